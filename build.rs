// `embed_migrations!` reads the files of migrations/ it knows, so an edited migration
// rebuilds the crate, but a new one (a new folder) would not: an incremental build would
// run without it. Watching the folder itself rebuilds on a new migration too.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
