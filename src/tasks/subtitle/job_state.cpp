#include "tasks/subtitle/job_state.h"

namespace llmd::subtitle {

using nlohmann::json;

json spec_to_json(const SubtitleJobSpec& s) {
  return {{"source_lang", s.source_lang},
          {"target_lang", s.target_lang},
          {"output_format", std::string(format_name(s.output_format))},
          {"bilingual", s.bilingual},
          {"target_first", s.target_first},
          {"max_line_chars", s.max_line_chars},
          {"source", s.source},
          {"source_name", s.source_name}};
}

SubtitleJobSpec spec_from_json(const json& j) {
  SubtitleJobSpec s;
  s.source_lang = j.value("source_lang", std::string("auto"));
  s.target_lang = j.value("target_lang", std::string());
  s.output_format = parse_format(j.value("output_format", std::string("srt"))).value_or(Format::kSrt);
  s.bilingual = j.value("bilingual", false);
  s.target_first = j.value("target_first", true);
  s.max_line_chars = j.value("max_line_chars", 0);
  s.source = j.value("source", std::string());
  s.source_name = j.value("source_name", std::string());
  return s;
}

json document_to_json(const Document& doc) {
  json cues = json::array();
  for (const auto& c : doc.cues) {
    cues.push_back(json::array({c.start_ms, c.end_ms, c.text, c.style, c.raw, c.id, c.ass_fields}));
  }
  return {{"format", std::string(format_name(doc.source_format))},
          {"ass_header", doc.ass_header},
          {"cues", std::move(cues)}};
}

Result<Document> document_from_json(const json& j) {
  if (!j.is_object() || !j.contains("cues") || !j["cues"].is_array()) {
    return fail(ErrorCode::kInternal, "the job's stored input is damaged", "job_damaged");
  }
  Document doc;
  doc.source_format = parse_format(j.value("format", std::string("srt"))).value_or(Format::kSrt);
  doc.ass_header = j.value("ass_header", std::string());
  try {
    for (const auto& c : j["cues"]) {
      Cue cue;
      cue.start_ms = c.at(0).get<std::int64_t>();
      cue.end_ms = c.at(1).get<std::int64_t>();
      cue.text = c.at(2).get<std::string>();
      cue.style = c.at(3).get<std::string>();
      cue.raw = c.at(4).get<std::string>();
      cue.id = c.at(5).get<std::string>();
      if (c.size() > 6) cue.ass_fields = c.at(6).get<std::string>();
      doc.cues.push_back(std::move(cue));
    }
  } catch (const json::exception&) {
    return fail(ErrorCode::kInternal, "the job's stored input is damaged", "job_damaged");
  }
  return doc;
}

JobProgress progress_from_state(const json& s, std::int64_t now) {
  JobProgress p;
  p.next_batch = s.value("batch", std::size_t{0});
  if (auto it = s.find("lines"); it != s.end() && it->is_array()) {
    for (const auto& l : *it) p.lines.push_back(l.is_string() ? l.get<std::string>() : std::string());
  }
  if (auto it = s.find("kept_source"); it != s.end() && it->is_array()) {
    for (const auto& k : *it) {
      if (k.is_number_integer()) p.kept_source.push_back(k.get<std::int64_t>());
    }
  }
  p.context = Context::from_json(s.value("context", json::object()));
  p.prompt_tokens = s.value("prompt_tokens", std::int64_t{0});
  p.completion_tokens = s.value("completion_tokens", std::int64_t{0});
  p.model_calls = s.value("model_calls", std::int64_t{0});
  p.started_at = s.value("started_at", now);
  return p;
}

void progress_to_state(const JobProgress& p, json& s) {
  s["batch"] = p.next_batch;
  s["lines"] = p.lines;
  s["kept_source"] = p.kept_source;
  s["context"] = p.context.to_json();
  s["prompt_tokens"] = p.prompt_tokens;
  s["completion_tokens"] = p.completion_tokens;
  s["model_calls"] = p.model_calls;
  s["started_at"] = p.started_at;
}

billing::Reservation reservation_from_state(const json& s, std::int64_t user_id, const std::string& job_id) {
  billing::Reservation r;
  if (auto it = s.find("reservation"); it != s.end() && it->is_object()) {
    r.id = it->value("id", std::int64_t{0});
    r.amount = it->value("amount", std::int64_t{0});
    if (auto key = it->find("api_key_id"); key != it->end() && key->is_number_integer()) {
      r.api_key_id = key->get<std::int64_t>();
    }
  }
  r.user_id = user_id;
  r.request_id = job_id;
  return r;
}

json reservation_json(const billing::Reservation& r) {
  json j = {{"id", r.id}, {"amount", r.amount}};
  if (r.api_key_id) j["api_key_id"] = *r.api_key_id;  // the key the job was submitted with: its budget pays too
  return j;
}

}  // namespace llmd::subtitle
