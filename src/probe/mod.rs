//! One probe per kind (dns, tcp, tls, mtls, http); each returns an observation, never a
//! network `Err`.
