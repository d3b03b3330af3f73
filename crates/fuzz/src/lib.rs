//! Fuzz targets for tokenwarden's parsers, run on stable Rust.
//!
//! The targets live in `tests/fuzz/` and run with `cargo test -p tokenwarden-fuzz`; the
//! corpus each one replays and mutates lives in `corpus/<target>/`. See `README.md` for
//! long runs (`TOKENWARDEN_FUZZ_CASES`) and for keeping a failing input.
