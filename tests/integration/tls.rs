//! TLS and mTLS for the gRPC port.
