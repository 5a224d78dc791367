#!/usr/bin/env python3
"""Grades the labelled homework set through a running `llmd serve` and compares
the grades with the human ones.

Reports, for all items and separately for the items the exact arithmetic check
decided (checks[0].verdict match/mismatch/unparseable_answer) and for those the
model graded alone:
  * exact match of `correct` (share of items where API and human agree),
  * mean absolute error of `score`,
  * quadratic weighted kappa of the score in five buckets (0-19 ... 80-100).

With a random-weight test model only the exact-check numbers mean anything.
Standard library only.

  python3 bench/homework/grade_eval.py --url http://127.0.0.1:8080 \
      --username eval_bot --password 'eval-password' [--items bench/homework/items.jsonl]
      [--brief] [--samples N] [--max-tokens N] [--json out.json]

The account is registered when it does not exist yet; it needs enough tokens
(each model-graded item costs 2 x (prompt + completion tokens) + 20).
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.request

BUCKETS = 5
EXACT_VERDICTS = {"match", "mismatch", "unparseable_answer"}


def request(url, method, path, body=None, token=None, timeout=600):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, {"raw": raw.decode(errors="replace")}


def login(url, username, password):
    status, body = request(url, "POST", "/api/v1/auth/login", {"username": username, "password": password})
    if status == 200:
        return body["token"]
    status, body = request(url, "POST", "/api/v1/auth/register",
                           {"username": username, "password": password, "email": username + "@example.com"})
    if status != 201:
        sys.exit("cannot log in or register %s: %s %s" % (username, status, body))
    return body["token"]


def bucket(score):
    return min(BUCKETS - 1, max(0, int(score) * BUCKETS // 101))


def qwk(a, b):
    """Quadratic weighted kappa of two equally long lists of bucket numbers."""
    n = len(a)
    if n == 0:
        return None
    observed = [[0] * BUCKETS for _ in range(BUCKETS)]
    for x, y in zip(a, b):
        observed[x][y] += 1
    hist_a = [a.count(i) for i in range(BUCKETS)]
    hist_b = [b.count(i) for i in range(BUCKETS)]
    num = den = 0.0
    for i in range(BUCKETS):
        for j in range(BUCKETS):
            w = (i - j) ** 2 / (BUCKETS - 1) ** 2
            num += w * observed[i][j]
            den += w * hist_a[i] * hist_b[j] / n
    return None if den == 0 else 1.0 - num / den


def summary(rows):
    if not rows:
        return {"items": 0}
    agree = sum(1 for r in rows if r["correct"] == r["human_correct"])
    mae = sum(abs(r["score"] - r["human_score"]) for r in rows) / len(rows)
    kappa = qwk([bucket(r["human_score"]) for r in rows], [bucket(r["score"]) for r in rows])
    return {"items": len(rows), "correct_exact_match": round(agree / len(rows), 4),
            "score_mae": round(mae, 2), "score_qwk": None if kappa is None else round(kappa, 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--username", default="homework_eval")
    ap.add_argument("--password", default="homework-eval-password")
    ap.add_argument("--items", default="bench/homework/items.jsonl")
    ap.add_argument("--brief", action="store_true", help="options.brief: short feedback (fast with test models)")
    ap.add_argument("--samples", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=0, help="options.max_tokens (0 = server default)")
    ap.add_argument("--json", help="write the per-item results and the summary here")
    args = ap.parse_args()

    token = login(args.url, args.username, args.password)
    items = [json.loads(line) for line in open(args.items, encoding="utf-8") if line.strip()]
    results, failures = [], []
    started = time.time()
    for it in items:
        body = {k: it[k] for k in ("subject", "question", "answer", "grade_level")}
        if it.get("reference_answer"):
            body["reference_answer"] = it["reference_answer"]
        options = {"samples": args.samples}
        if args.brief:
            options["brief"] = True
        if args.max_tokens:
            options["max_tokens"] = args.max_tokens
        body["options"] = options
        t0 = time.time()
        status, reply = request(args.url, "POST", "/api/v1/tasks/homework", body, token)
        if status != 200:
            failures.append({"id": it["id"], "status": status, "reply": reply})
            print("%-14s HTTP %s %s" % (it["id"], status, json.dumps(reply, ensure_ascii=False)[:120]), file=sys.stderr)
            continue
        verdict = reply["checks"][0]["verdict"] if reply.get("checks") else "none"
        row = {"id": it["id"], "kind": it["kind"], "human_score": it["human_score"],
               "human_correct": it["human_correct"], "score": reply["score"], "correct": reply["correct"],
               "verdict": verdict, "graded_by": reply.get("graded_by"), "tokens": reply["tokens_consumed"],
               "seconds": round(time.time() - t0, 2)}
        results.append(row)
        print("%-14s %-18s score %3d/%3d correct %-5s/%-5s %5.1fs" % (
            row["id"], verdict, row["score"], row["human_score"], row["correct"], row["human_correct"],
            row["seconds"]), file=sys.stderr)

    exact = [r for r in results if r["verdict"] in EXACT_VERDICTS]
    model_only = [r for r in results if r["verdict"] not in EXACT_VERDICTS]
    report = {"all": summary(results), "exact_check_items": summary(exact), "model_only_items": summary(model_only),
              "failed_requests": len(failures), "tokens_consumed": sum(r["tokens"] for r in results),
              "wall_seconds": round(time.time() - started, 1)}
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"summary": report, "items": results, "failures": failures}, f, indent=1, ensure_ascii=False)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
