//! Tests that need the PostgreSQL server are compiled as ignored ("not run") unless
//! `VEU_TEST_POSTGRES_URL` is set, so they are never reported as passed without running.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(veu_postgres)");
    println!("cargo:rerun-if-env-changed=VEU_TEST_POSTGRES_URL");
    if std::env::var("VEU_TEST_POSTGRES_URL").is_ok_and(|url| !url.is_empty()) {
        println!("cargo:rustc-cfg=veu_postgres");
    }
}
