//! Configuration files: any text as `daisi run --config`. Loading either
//! gives a configuration that passes its own checks or names errors.
#![no_main]
use daisi::config::Config;
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("a temporary file");
    f.write_all(data).expect("written");
    match Config::load_from(None, Some(f.path()), &[], None) {
        Ok(_) => {}
        Err(errors) => assert!(!errors.to_string().is_empty(), "errors are named"),
    }
});
