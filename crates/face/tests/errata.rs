//! `docs/lfw-dev-errata.csv` (the LFW dev pairs that `idverify eval faces --errata` relabels) names
//! pairs of `lfw/dev/pairs.csv` that the file labels as one person, and images that exist: a stale
//! or mistyped errata file would silently relabel nothing. Skips, with a message, without
//! ../shared/data.

use std::collections::HashSet;

use idverify_testkit::shared_data;

fn rows(path: &std::path::Path) -> Vec<(String, String, String)> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].trim().to_string(), r[1].trim().to_string(), r[2].trim().to_string())
        })
        .collect()
}

#[test]
fn the_lfw_errata_name_genuine_pairs_of_the_dev_pairs_file() {
    let lfw = shared_data().join("lfw/dev");
    if !lfw.join("pairs.csv").is_file() {
        eprintln!("SKIP: {} not found", lfw.join("pairs.csv").display());
        return;
    }
    let errata =
        rows(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/lfw-dev-errata.csv"));
    assert!(!errata.is_empty());
    let genuine: HashSet<(String, String)> = rows(&lfw.join("pairs.csv"))
        .into_iter()
        .filter(|(_, _, same)| same == "1")
        .map(|(a, b, _)| (a, b))
        .collect();
    for (a, b, same) in &errata {
        assert_eq!(same, "0", "{a} / {b}: the errata relabel genuine pairs as impostors");
        assert!(genuine.contains(&(a.clone(), b.clone())), "{a} / {b} is not a genuine pair of the file");
        assert!(lfw.join(a).is_file() && lfw.join(b).is_file(), "{a} / {b}: image missing");
    }
}
