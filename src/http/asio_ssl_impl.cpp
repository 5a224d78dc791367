// Asio's SSL support, compiled once (BOOST_ASIO_SEPARATE_COMPILATION) for the
// HTTPS listener (http/tls.h, http/conn_stream.h); kept out of llmd_asio so
// modules that only use coroutines do not link OpenSSL.
#include <boost/asio/ssl/impl/src.hpp>
