//! Links the cdylib with `-z nodelete`: once loaded, it stays loaded until the process exits,
//! even when the caller (nvml-wrapper, on `Nvml` drop) calls `dlclose`. Its state, in particular
//! the `lost_after_queries` counts, then lives as long as the process, as the fixture format
//! promises; and no Rust thread-local destructor can outlive the library's code.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
}
