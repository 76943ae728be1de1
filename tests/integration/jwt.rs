//! Bearer JWTs.
