//! Card fronts end to end through `DocumentEngine::scan` with the real models: synthetic US and EU
//! licence and ID card fronts from `scripts/synth_fronts.py` (portraits from LFW), clean and with
//! photographic damage. Skips, with a message, when the models, ../shared/data or the models
//! venv's Python (numpy, Pillow) are absent.

use chrono::NaiveDate;
use idverify_document::eval::{viz_same, viz_value};
use idverify_document::{DocumentEngine, DocumentEngineConfig, DocumentScan, DocumentType, RequestedType};
use idverify_testkit::fronts::{Front, generate, generate_layouts, venv_python};
use idverify_testkit::{models_dir, shared_data};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()
}

fn engine() -> Option<DocumentEngine> {
    let models_dir = models_dir();
    if !models_dir.join(idverify_document::VIZ_REC_MODEL).is_file() {
        eprintln!("SKIP: models not found in {}", models_dir.display());
        return None;
    }
    Some(
        DocumentEngine::load(&DocumentEngineConfig {
            models_dir,
            intra_threads: 1,
            sessions: 1,
            cross_check_passports: false,
        })
        .expect("engine loads"),
    )
}

fn requested(front: &Front) -> RequestedType {
    if front.get("layout") == "viz_id_card" {
        RequestedType::NationalId
    } else {
        RequestedType::DriversLicense
    }
}

/// A generated front scanned as its layout asks, with its file name for the messages.
fn scan_front(engine: &DocumentEngine, front: &Front) -> (String, DocumentScan) {
    let img = image::open(&front.image).unwrap().to_rgb8();
    let name = front.image.file_name().unwrap().to_string_lossy().into_owned();
    (name, engine.scan(&img, requested(front), today()).unwrap())
}

/// The manifest columns these tests compare (not the address: a US front's lines are joined in
/// more than one acceptable way).
const COMPARED: [&str; 8] =
    ["surname", "given_names", "birth_date", "issue_date", "expiry_date", "number", "sex", "nationality"];

/// The compared fields the manifest lists that the scan did not read exactly, compared as
/// `idverify eval viz` does.
fn wrong_fields(front: &Front, scan: &DocumentScan) -> Vec<String> {
    COMPARED
        .into_iter()
        .filter(|column| {
            let expected = front.get(column);
            !expected.is_empty() && !viz_value(scan, column).is_some_and(|read| viz_same(expected, &read))
        })
        .map(String::from)
        .collect()
}

#[test]
fn clean_fronts_of_every_layout_are_read_field_for_field() {
    let Some(engine) = engine() else { return };
    let Some((_dir, fronts)) = generate(6, true) else { return };
    for front in &fronts {
        let (name, scan) = scan_front(&engine, front);
        assert!(scan.error.is_none(), "{name}: {:?}", scan.error);
        assert_eq!(scan.source, Some(front.get("layout")), "{name}");
        assert_eq!(wrong_fields(front, &scan), Vec::<String>::new(), "{name}");
        let expected_type = if front.get("layout") == "viz_id_card" {
            DocumentType::NationalId
        } else {
            DocumentType::DriversLicense
        };
        assert_eq!(scan.document_type, Some(expected_type), "{name}");
        // The state for a US front; an EU card's issuer is its country.
        let state = Some(front.get("jurisdiction")).filter(|_| front.get("layout") == "viz_aamva");
        assert_eq!(scan.fields.issuing_jurisdiction.as_deref(), state, "{name}");
        assert!(
            scan.checks_passed(),
            "{name}: {:?}",
            scan.checks.iter().filter(|c| !c.passed).collect::<Vec<_>>()
        );
        if !front.get("eu_mrz").is_empty() {
            assert_eq!(scan.mrz_lines, vec![front.get("eu_mrz").to_string()], "{name}");
            assert!(scan.checks.iter().any(|c| c.name == "viz_mrz_consistent" && c.passed), "{name}");
        }
        assert!(scan.confidence > 80.0, "{name}: confidence {}", scan.confidence);
    }
}

#[test]
fn photographed_fronts_are_read_with_few_field_errors() {
    let Some(engine) = engine() else { return };
    let Some((_dir, fronts)) = generate(9, false) else { return };
    let (mut wrong, mut listed) = (0, 0);
    for front in &fronts {
        let (name, scan) = scan_front(&engine, front);
        assert_eq!(scan.source, Some(front.get("layout")), "{name}: {:?}", scan.error);
        let missed = wrong_fields(front, &scan);
        eprintln!("{name}: {} wrong: {missed:?}", missed.len());
        wrong += missed.len();
        listed += COMPARED.iter().filter(|c| !front.get(c).is_empty()).count();
    }
    // A misread field must be rare, not absent: the figure itself is `idverify eval viz`'s.
    assert!(wrong * 10 <= listed, "{wrong} of {listed} fields wrong");
}

#[test]
fn canadian_fronts_are_read_with_their_province_and_year_first_dates() {
    let Some(engine) = engine() else { return };
    // Alberta, British Columbia, Ontario and Quebec in turn, photographed.
    let Some((_dir, fronts)) = generate_layouts(4, false, "ca") else { return };
    for front in &fronts {
        let (name, scan) = scan_front(&engine, front);
        assert_eq!(scan.source, Some("viz_aamva"), "{name}: {:?}", scan.error);
        assert_eq!(scan.fields.issuing_country.as_deref(), Some("CAN"), "{name}");
        assert_eq!(scan.fields.issuing_jurisdiction.as_deref(), Some(front.get("jurisdiction")), "{name}");
        assert_eq!(wrong_fields(front, &scan), Vec::<String>::new(), "{name}");
        let address = scan.fields.address.as_deref().unwrap_or_default();
        assert!(viz_same(front.get("address"), address), "{name}: {address}");
        assert!(
            scan.checks_passed(),
            "{name}: {:?}",
            scan.checks.iter().filter(|c| !c.passed).collect::<Vec<_>>()
        );
    }
}

/// `front` in the middle of a plain page twice its size: the same card photographed from twice as
/// far.
fn from_afar(front: &image::RgbImage) -> image::RgbImage {
    let (w, h) = front.dimensions();
    let mut page = image::RgbImage::from_pixel(2 * w, 2 * h, image::Rgb([214, 208, 196]));
    image::imageops::overlay(&mut page, front, i64::from(w / 2), i64::from(h / 3));
    page
}

#[test]
fn fronts_photographed_from_afar_are_detected_again_on_their_text_region() {
    let Some(engine) = engine() else { return };
    let Some((_dir, fronts)) = generate(3, false) else { return };
    for front in &fronts {
        let near = image::open(&front.image).unwrap().to_rgb8();
        let name = front.image.file_name().unwrap().to_string_lossy();
        for (distance, img) in [("near", near.clone()), ("afar", from_afar(&near))] {
            let before = engine.ocr_runs();
            let scan = engine.scan(&img, requested(front), today()).unwrap();
            let runs = engine.ocr_runs().since(&before);
            // One pass when the card fills the photo; a second, enlarged, on the text region when
            // its text is too small for the first.
            let passes = if distance == "near" { 1 } else { 2 };
            assert_eq!(runs.detector_runs, passes, "{name} {distance}");
            assert_eq!(scan.source, Some(front.get("layout")), "{name} {distance}: {:?}", scan.error);
            assert_eq!(wrong_fields(front, &scan), Vec::<String>::new(), "{name} {distance}");
        }
    }
}

/// Character-weighted mean probability of the lines read on a page as it is.
fn mean_confidence(engine: &DocumentEngine, img: &image::RgbImage) -> f32 {
    let lines = engine.text_lines(img).unwrap();
    let chars: usize = lines.iter().map(|l| l.text.chars().count()).sum();
    lines.iter().map(|l| l.confidence * l.text.chars().count() as f32).sum::<f32>() / chars.max(1) as f32
}

#[test]
fn fronts_photographed_sideways_or_upside_down_are_read_in_their_upright_turn() {
    let Some(engine) = engine() else { return };
    let Some((_dir, fronts)) = generate(3, true) else { return };
    for front in &fronts {
        let upright = image::open(&front.image).unwrap().to_rgb8();
        let name = front.image.file_name().unwrap().to_string_lossy();
        let turned = [
            ("90", image::imageops::rotate90(&upright)),
            ("180", image::imageops::rotate180(&upright)),
            ("270", image::imageops::rotate270(&upright)),
        ];
        for (turn, img) in &turned {
            let scan = engine.scan(img, requested(front), today()).unwrap();
            assert_eq!(scan.source, Some(front.get("layout")), "{name} turned {turn}: {:?}", scan.error);
            assert_eq!(wrong_fields(front, &scan), Vec::<String>::new(), "{name} turned {turn}");
        }
        // What tells upright text from upside-down text once the boxes lie flat (the reader's
        // UPRIGHT_CONFIDENCE, 0.88): the recognizer's probabilities.
        let (up, down) = (mean_confidence(&engine, &upright), mean_confidence(&engine, &turned[1].1));
        eprintln!("{name}: mean probability upright {up:.3}, upside down {down:.3}");
        assert!(up >= 0.88 && down < 0.88, "{name}: upright {up}, upside down {down}");
    }
}

#[test]
fn a_passport_page_is_not_taken_for_a_card_front() {
    let Some(engine) = engine() else { return };
    let path = shared_data().join("mrz_docs/dev/Arg0s1080-mrz__docs_images_passports_ICAO_Example.png");
    if !path.is_file() {
        eprintln!("SKIP: {} not found", path.display());
        return;
    }
    let img = image::open(path).unwrap().to_rgb8();
    // Asked for a licence, a passport page is read by its MRZ and reported as a mismatch.
    let scan = engine.scan(&img, RequestedType::DriversLicense, today()).unwrap();
    assert_eq!(scan.source, Some("mrz_td3"));
    assert_eq!(scan.error.map(|e| e.code), Some(idverify_document::BlockCode::DocumentTypeMismatch));
}

#[test]
fn card_fronts_are_read_the_same_in_every_process() {
    use idverify_testkit::processes::{assert_same_in_every_process, emit, fnv, is_child};
    let name = "card_fronts_are_read_the_same_in_every_process";
    if !is_child() {
        // Skip here, in the parent, when something is missing (each child generates the same
        // seeded fronts into its own folder).
        let ready = models_dir().join(idverify_document::VIZ_REC_MODEL).is_file()
            && shared_data().join("lfw/dev").is_dir()
            && venv_python().is_some();
        if !ready {
            eprintln!("SKIP: models, ../shared/data/lfw or the models venv absent");
            return;
        }
        return assert_same_in_every_process(name);
    }
    let engine = engine().expect("models present");
    let (_dir, fronts) = generate(3, false).expect("fronts generated");
    for front in &fronts {
        let img = image::open(&front.image).unwrap().to_rgb8();
        let scan = engine.scan(&img, requested(front), today()).unwrap();
        // Debug prints floats exactly (shortest round-trip form): equal text means equal bits.
        let text = format!("{scan:?}");
        emit(format!(
            "{}\t{:?}\t{}\t{:016x}",
            front.get("image"),
            scan.source,
            scan.confidence.to_bits(),
            fnv(text.bytes())
        ));
    }
}

/// The committed specimen fronts (`tests/specimens/`, MIT): read from their printed fields.
fn specimen(file: &str) -> (Front, image::RgbImage) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/specimens");
    let mut reader = csv::Reader::from_path(dir.join("manifest.csv")).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let columns = reader
        .records()
        .map(|r| headers.iter().cloned().zip(r.unwrap().iter().map(String::from)).collect::<Vec<_>>())
        .find(|columns| columns[0].1 == file)
        .expect("specimen in the manifest");
    let image = image::open(dir.join(file)).unwrap().to_rgb8();
    (Front { image: dir.join(file), columns }, image)
}

#[test]
fn specimen_us_licence_fronts_are_read() {
    let Some(engine) = engine() else { return };
    // Washington (AAMVA numbering, numbers glued to labels): every field, the address too, which
    // OCR reads with field 8 glued to the house number of a street printed `STREET ADDRESS`.
    let (front, img) = specimen("us_wa.jpg");
    let scan = engine.scan(&img, RequestedType::DriversLicense, today()).unwrap();
    assert_eq!(scan.source, Some("viz_aamva"));
    assert_eq!(wrong_fields(&front, &scan), Vec::<String>::new());
    let address = scan.fields.address.as_deref().unwrap_or_default();
    assert!(viz_same(front.get("address"), address), "{address}");
    assert_eq!(scan.fields.issuing_country.as_deref(), Some("USA"));
    assert_eq!(scan.fields.issuing_jurisdiction.as_deref(), Some("WA"));
    // It expired in 2020: read, and reported as expired.
    assert!(scan.reasons.contains(&"expired") && !scan.checks_passed());
    // West Virginia (an invented design: labels in boxes of their own, the values on their
    // right, no field numbers, the name given name first with no label over an unlabelled
    // address): every field.
    let (front, img) = specimen("us_wv.png");
    let scan = engine.scan(&img, RequestedType::DriversLicense, today()).unwrap();
    assert_eq!(scan.source, Some("viz_aamva"));
    assert_eq!(wrong_fields(&front, &scan), Vec::<String>::new());
    let address = scan.fields.address.as_deref().unwrap_or_default();
    assert!(viz_same(front.get("address"), address), "{address}");
}
