//! End-to-end tests of `DocumentEngine::scan` with the real models. They skip (with a message) when
//! the models or the shared data are absent.

use chrono::NaiveDate;
use idverify_document::{DocumentEngine, DocumentEngineConfig, DocumentType, RequestedType};
use idverify_testkit::{models_dir, shared_data};
use image::RgbImage;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
}

fn engine() -> Option<DocumentEngine> {
    let models_dir = models_dir();
    if !models_dir.join(idverify_document::REC_MODEL).is_file() {
        eprintln!("SKIP: models not found in {}", models_dir.display());
        return None;
    }
    Some(
        DocumentEngine::load(&DocumentEngineConfig {
            models_dir,
            intra_threads: 1,
            sessions: 2,
            cross_check_passports: false,
        })
        .expect("engine loads"),
    )
}

fn shared_image(rel: &str) -> Option<RgbImage> {
    let path = shared_data().join(rel);
    if !path.is_file() {
        eprintln!("SKIP: {} not found", path.display());
        return None;
    }
    Some(image::open(path).expect("image decodes").to_rgb8())
}

const ICAO_TD3: &str = "mrz_docs/dev/Arg0s1080-mrz__docs_images_passports_ICAO_Example.png";

#[test]
fn reads_the_icao_passport_specimen() {
    let (Some(engine), Some(img)) = (engine(), shared_image(ICAO_TD3)) else { return };
    let scan = engine.scan(&img, RequestedType::Auto, today()).unwrap();
    assert!(scan.error.is_none(), "{:?}", scan.error);
    assert_eq!(scan.document_type, Some(DocumentType::Passport));
    assert_eq!(scan.source, Some("mrz_td3"));
    let f = &scan.fields;
    assert_eq!(f.full_name.as_deref(), Some("ANNA MARIA ERIKSSON"));
    assert_eq!(f.first_name.as_deref(), Some("ANNA MARIA"));
    assert_eq!(f.last_name.as_deref(), Some("ERIKSSON"));
    assert_eq!(f.document_number.as_deref(), Some("L898902C3"));
    assert_eq!(f.date_of_birth, NaiveDate::from_ymd_opt(1974, 8, 12));
    assert_eq!(f.expiration_date, NaiveDate::from_ymd_opt(2012, 4, 15));
    assert_eq!(f.gender.as_deref(), Some("F"));
    assert_eq!(f.nationality.as_deref(), Some("UTO"));
    assert_eq!(f.issuing_country.as_deref(), Some("UTO"));
    let failed: Vec<&str> = scan.checks.iter().filter(|c| !c.passed).map(|c| c.name).collect();
    assert_eq!(failed, vec!["not_expired"]);
    assert!(scan.reasons.contains(&"expired"));
    assert!(!scan.checks_passed());
    assert!(scan.confidence > 80.0, "confidence {}", scan.confidence);

    // Asking for another document type reports a mismatch but keeps the fields.
    let scan = engine.scan(&img, RequestedType::NationalId, today()).unwrap();
    assert_eq!(scan.error.as_ref().map(|e| e.code.as_str()), Some("document_type_mismatch"));
    assert_eq!(scan.fields.last_name.as_deref(), Some("ERIKSSON"));
}

#[test]
fn reads_a_page_turned_sideways() {
    let (Some(engine), Some(img)) = (engine(), shared_image(ICAO_TD3)) else { return };
    let turned = image::imageops::rotate90(&img);
    let scan = engine.scan(&turned, RequestedType::Passport, today()).unwrap();
    assert!(scan.error.is_none(), "{:?}", scan.error);
    assert_eq!(scan.fields.document_number.as_deref(), Some("L898902C3"));
}

#[test]
fn reads_a_page_upside_down_and_turned_the_other_way() {
    let (Some(engine), Some(img)) = (engine(), shared_image(ICAO_TD3)) else { return };
    for turned in [image::imageops::rotate180(&img), image::imageops::rotate270(&img)] {
        let scan = engine.scan(&turned, RequestedType::Passport, today()).unwrap();
        assert!(scan.error.is_none(), "{:?}", scan.error);
        assert_eq!(scan.fields.document_number.as_deref(), Some("L898902C3"));
        assert_eq!(scan.fields.last_name.as_deref(), Some("ERIKSSON"));
    }
}

#[test]
fn reads_a_td1_card_as_national_id() {
    let (Some(engine), Some(img)) =
        (engine(), shared_image("mrz_docs/dev/sivakumar-mahalingam-fastmrz__data_td1.jpg"))
    else {
        return;
    };
    let scan = engine.scan(&img, RequestedType::NationalId, today()).unwrap();
    assert!(scan.error.is_none(), "{:?}", scan.error);
    assert_eq!(scan.source, Some("mrz_td1"));
    assert_eq!(scan.document_type, Some(DocumentType::NationalId));
    assert_eq!(scan.fields.document_number.as_deref(), Some("D23145890"));
}

#[test]
fn blank_and_tiny_images_are_not_errors() {
    let Some(engine) = engine() else { return };
    let blank = RgbImage::from_pixel(640, 400, image::Rgb([235, 235, 235]));
    let scan = engine.scan(&blank, RequestedType::Auto, today()).unwrap();
    assert_eq!(scan.error.as_ref().map(|e| e.code.as_str()), Some("no_document_found"));
    assert!(scan.document_type.is_none());
    let tiny = RgbImage::new(1, 1);
    let scan = engine.scan(&tiny, RequestedType::Passport, today()).unwrap();
    assert_eq!(scan.error.as_ref().map(|e| e.code.as_str()), Some("no_document_found"));
}

/// Renders a PDF417 symbol (3 px modules, white quiet zone).
fn render_pdf417(payload: &str) -> RgbImage {
    use rxing::Writer;
    let matrix = rxing::pdf417::PDF417Writer
        .encode(payload, &rxing::BarcodeFormat::PDF_417, 0, 0)
        .expect("payload encodes");
    let (w, h) = (matrix.getWidth(), matrix.getHeight());
    let scale = 3;
    let mut img = RgbImage::from_pixel((w + 20) * scale, (h + 20) * scale, image::Rgb([255, 255, 255]));
    for y in 0..h {
        for x in 0..w {
            if matrix.get(x, y) {
                for dy in 0..scale {
                    for dx in 0..scale {
                        img.put_pixel((x + 10) * scale + dx, (y + 10) * scale + dy, image::Rgb([0, 0, 0]));
                    }
                }
            }
        }
    }
    img
}

#[test]
fn reads_a_driver_licence_barcode() {
    let Some(engine) = engine() else { return };
    // Fake licence data in AAMVA 2016 (version 8) layout.
    let body = "DLDCAD\nDCSPUBLIC\nDACJOHN\nDADQUINCY\nDBB07041976\nDBA07042031\nDBC1\nDAQD12345678\n\
                DAG1 MAIN ST\nDAIRICHMOND\nDAJVA\nDAK232191234  \nDCGUSA\r";
    let payload = format!("@\n\u{1e}\rANSI 636000080001DL0031{:04}{body}", body.len());
    let img = render_pdf417(&payload);
    let scan = engine.scan(&img, RequestedType::DriversLicense, today()).unwrap();
    assert!(scan.error.is_none(), "{:?}", scan.error);
    assert_eq!(scan.document_type, Some(DocumentType::DriversLicense));
    assert_eq!(scan.source, Some("pdf417_aamva"));
    assert_eq!(scan.fields.full_name.as_deref(), Some("JOHN QUINCY PUBLIC"));
    assert_eq!(scan.fields.document_number.as_deref(), Some("D12345678"));
    assert_eq!(scan.fields.date_of_birth, NaiveDate::from_ymd_opt(1976, 7, 4));
    assert_eq!(scan.fields.expiration_date, NaiveDate::from_ymd_opt(2031, 7, 4));
    assert_eq!(scan.fields.address.as_deref(), Some("1 MAIN ST, RICHMOND, VA 23219-1234"));
    assert_eq!(scan.fields.issuing_country.as_deref(), Some("USA"));
    assert!(scan.checks_passed());
    assert_eq!(scan.confidence, 100.0);

    // Auto finds it too (after looking for an MRZ); a passport request is a mismatch.
    let scan = engine.scan(&img, RequestedType::Auto, today()).unwrap();
    assert_eq!(scan.source, Some("pdf417_aamva"));
    let scan = engine.scan(&img, RequestedType::Passport, today()).unwrap();
    assert_eq!(scan.error.as_ref().map(|e| e.code.as_str()), Some("document_type_mismatch"));
}

#[test]
fn a_non_licence_barcode_is_unreadable_as_a_licence() {
    let Some(engine) = engine() else { return };
    let img = render_pdf417("ActiveBarcode-ABCDEFGHIJKLMNOPQRSTUVWXYZ1234567890");
    let scan = engine.scan(&img, RequestedType::DriversLicense, today()).unwrap();
    assert_eq!(scan.error.as_ref().map(|e| e.code.as_str()), Some("barcode_unreadable"));
}

#[test]
fn scans_in_parallel() {
    let (Some(engine), Some(img)) = (engine(), shared_image(ICAO_TD3)) else { return };
    std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..3).map(|_| s.spawn(|| engine.scan(&img, RequestedType::Auto, today()))).collect();
        for h in handles {
            let scan = h.join().unwrap().unwrap();
            assert_eq!(scan.fields.document_number.as_deref(), Some("L898902C3"));
        }
    });
}

#[test]
fn a_passport_data_page_is_cross_checked_with_its_mrz_when_configured() {
    let Some(img) = shared_image(ICAO_TD3) else { return };
    let models_dir = models_dir();
    if !models_dir.join(idverify_document::VIZ_REC_MODEL).is_file() {
        eprintln!("SKIP: models not found in {}", models_dir.display());
        return;
    }
    let load = |cross_check_passports| {
        DocumentEngine::load(&DocumentEngineConfig {
            models_dir: models_dir.clone(),
            intra_threads: 1,
            sessions: 1,
            cross_check_passports,
        })
        .expect("engine loads")
    };
    let consistent = |engine: &DocumentEngine| {
        let scan = engine.scan(&img, RequestedType::Passport, today()).unwrap();
        assert_eq!(scan.source, Some("mrz_td3"));
        scan.checks.iter().find(|c| c.name == "viz_mrz_consistent").map(|c| c.passed)
    };
    assert_eq!(consistent(&load(false)), None, "off by default: no visual-zone read for a passport");
    // The specimen's printed name, number and dates are those of its MRZ.
    assert_eq!(consistent(&load(true)), Some(true));
}

/// The printed-fields-against-MRZ check on every real document of the MRZ dev set, read as an ID
/// card (so the page's text is read too): a genuine document whose MRZ reads cleanly must never
/// be called inconsistent. Prints how many were compared (BENCHMARKS.md, "Card fronts").
#[test]
fn the_mrz_cross_check_raises_no_false_mismatch_on_the_dev_documents() {
    let Some(engine) = engine() else { return };
    let manifest = shared_data().join("mrz_docs/dev/manifest.csv");
    if !manifest.is_file() {
        eprintln!("SKIP: {} not found", manifest.display());
        return;
    }
    let dir = manifest.parent().unwrap();
    let (mut compared, mut false_mismatches) = (0, Vec::new());
    for record in csv::Reader::from_path(&manifest).unwrap().records() {
        let file = record.unwrap()[0].to_string();
        let img = image::open(dir.join(&file)).unwrap().to_rgb8();
        let scan = engine.scan(&img, RequestedType::NationalId, today()).unwrap();
        let digits_pass = scan.checks.iter().filter(|c| c.name.ends_with("check_digit")).all(|c| c.passed);
        match scan.checks.iter().find(|c| c.name == "viz_mrz_consistent") {
            Some(check) if digits_pass => {
                compared += 1;
                if !check.passed {
                    false_mismatches.push(file);
                }
            }
            _ => {}
        }
    }
    eprintln!(
        "viz_mrz_consistent compared on {compared} clean MRZ reads, false mismatches: {false_mismatches:?}"
    );
    assert!(compared >= 20, "only {compared} documents compared");
    assert_eq!(false_mismatches, Vec::<String>::new());
}
