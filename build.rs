//! Build steps:
//! - compiles the eBPF capture program (`src/bpf/capture.bpf.c`) with clang
//!   and generates its Rust skeleton (libbpf-cargo);
//! - lets the binary find libtorch at run time without LD_LIBRARY_PATH: the
//!   libtorch directory (the PyTorch wheel's, see scripts/setup.sh) goes
//!   into the executable's run path.
use std::path::{Path, PathBuf};

fn main() {
    bpf();
    libtorch_rpath();
}

fn bpf() {
    let src = "src/bpf/capture.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("capture.skel.rs");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    // Debian keeps asm/types.h under the multiarch include directory.
    let multiarch = format!("-I/usr/include/{arch}-linux-gnu");
    if let Err(e) = libbpf_cargo::SkeletonBuilder::new()
        .source(src)
        .clang_args([multiarch.as_str(), "-Wall", "-O2"])
        .build_and_generate(&out)
    {
        panic!("building {src} failed (needs clang and libelf-dev: run scripts/setup.sh): {e:#}");
    }
}

fn libtorch_rpath() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if std::env::var_os("CARGO_FEATURE_TORCH").is_none() {
        return;
    }
    if let Ok(dir) = std::env::var("LIBTORCH") {
        let lib = Path::new(&dir).join("lib");
        let lib = lib.canonicalize().unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
