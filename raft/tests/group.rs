//! A replica's directory belongs to one monitor group: opening it for another is refused.

use mmm_raft::{Store, StoreError};

#[test]
fn opening_with_another_group_id_is_refused_naming_both_ids_and_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), "cluster-a").unwrap());

    let err = Store::open(dir.path(), "cluster-b").unwrap_err();

    assert!(matches!(err, StoreError::ForeignGroup { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: this directory holds the Raft data of monitor group 'cluster-a', not 'cluster-b'; a replica must not join a foreign group",
            dir.path().display()
        )
    );
}

#[test]
fn reopening_with_the_same_group_id_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path(), "cluster-a").unwrap());
    drop(Store::open(dir.path(), "cluster-a").unwrap());
    assert!(
        Store::open(dir.path(), "cluster-b").is_err(),
        "the first id stays recorded"
    );
}

#[test]
fn a_directory_held_by_an_open_store_is_refused_as_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let _held = Store::open(dir.path(), "group-a").unwrap();
    let err = Store::open(dir.path(), "group-a").err().unwrap();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: the Raft store is in use by another process (is another mmm_mond running with this data_dir?)",
            dir.path().display()
        )
    );
}
