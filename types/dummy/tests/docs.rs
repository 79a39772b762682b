//! docs/resource-types.md lists every private property of `dummy` exactly as declared.

#[test]
fn the_docs_list_every_property() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/resource-types.md"))
        .unwrap_or_default();
    let table = halo_type_dummy::PROPERTIES.to_string();
    assert!(docs.contains(&table), "docs/resource-types.md must contain this table:\n{table}");
}
