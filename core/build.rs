//! Rebuilds the golden test list when scripts are added or removed: `test_each_path!` reads
//! the directory at compile time, and cargo does not watch it otherwise.

fn main() {
    println!("cargo:rerun-if-changed=tests/golden");
}
