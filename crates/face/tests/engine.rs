//! Integration tests on real models and a few shared dev images. They skip (with a visible
//! message) when `../shared` or the models are absent.

use std::path::PathBuf;
use std::sync::OnceLock;

use idverify_face::align::Similarity;
use idverify_face::{Embedding, FaceEngine, FaceEngineConfig, eval};
use image::RgbImage;

fn shared_data() -> Option<PathBuf> {
    let dir = idverify_testkit::shared_data();
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIP: shared data not found at {}", dir.display());
        None
    }
}

fn engine() -> Option<&'static FaceEngine> {
    static ENGINE: OnceLock<Option<FaceEngine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let models_dir = idverify_testkit::models_dir();
            if !models_dir.join(idverify_face::RECOGNIZER_FILE).is_file() {
                eprintln!("SKIP: models not found in {} (run scripts/fetch-models.sh)", models_dir.display());
                return None;
            }
            let cfg = FaceEngineConfig {
                models_dir,
                intra_threads: 1,
                sessions: 1,
                target_fmr: 0.001,
                recognizers: idverify_face::Recognizers::Dlib,
            };
            Some(FaceEngine::load(&cfg).expect("engine loads"))
        })
        .as_ref()
}

fn setup() -> Option<(&'static FaceEngine, PathBuf)> {
    let data = shared_data()?;
    Some((engine()?, data))
}

const OBAMA_A: &str = "faces/dev/barack_obama/ageitgey-face_recognition__examples_obama.jpg";
const OBAMA_B: &str = "faces/dev/barack_obama/ageitgey-face_recognition__examples_obama2.jpg";
const CLOONEY: &str = "faces/dev/george_clooney/serengil-deepface__tests_unit_dataset_img39.jpg";

fn embed_main_face(engine: &FaceEngine, image: &RgbImage) -> Embedding {
    let face = engine.detect(image).unwrap().into_iter().next().expect("a face");
    engine.embed(image, &face).unwrap()
}

#[test]
fn detects_faces_with_landmarks_inside_the_box() {
    let Some((engine, data)) = setup() else { return };
    for rel in [OBAMA_A, OBAMA_B, CLOONEY] {
        let image = eval::load_oriented_rgb(&data.join(rel)).unwrap();
        let faces = engine.detect(&image).unwrap();
        assert!(!faces.is_empty(), "no face in {rel}");
        let f = &faces[0];
        assert!(f.score >= 0.6 && f.score <= 1.0);
        assert!(f.bbox.width > 40.0, "{rel}: face width {}", f.bbox.width);
        for lm in f.landmarks {
            assert!(lm[0] >= f.bbox.x && lm[0] <= f.bbox.x + f.bbox.width, "{rel}");
            assert!(lm[1] >= f.bbox.y && lm[1] <= f.bbox.y + f.bbox.height, "{rel}");
        }
        // Eyes above the mouth, left eye left of right eye.
        assert!(f.landmarks[0][0] < f.landmarks[1][0] && f.landmarks[0][1] < f.landmarks[3][1]);
        for w in faces.windows(2) {
            assert!(w[0].bbox.width * w[0].bbox.height >= w[1].bbox.width * w[1].bbox.height);
        }
    }
}

#[test]
fn same_person_is_closer_than_different_people() {
    let Some((engine, data)) = setup() else { return };
    let load = |rel: &str| eval::load_oriented_rgb(&data.join(rel)).unwrap();
    let (a, b, c) = (load(OBAMA_A), load(OBAMA_B), load(CLOONEY));
    let (ea, eb, ec) =
        (embed_main_face(engine, &a), embed_main_face(engine, &b), embed_main_face(engine, &c));
    assert_eq!(ea.0.len(), 128);
    let same = engine.compare(&ea, &eb);
    let diff = engine.compare(&ea, &ec);
    eprintln!("genuine distance {:.3}, impostor distance {:.3}", same.distance, diff.distance);
    // Unit-length embeddings: the FMR 0.001 threshold sits near distance 0.40.
    assert!(same.is_match && same.distance < 0.33);
    assert!(!diff.is_match && diff.distance > 0.47);
    assert!(same.confidence > same.threshold && diff.confidence < diff.threshold);
    assert!((0.0..=100.0).contains(&same.confidence) && (0.0..=100.0).contains(&diff.confidence));
    let q = engine.quality(&a, &engine.detect(&a).unwrap()[0]);
    assert!(q.face_width_px > 100.0 && q.yaw_degrees.abs() < 30.0, "{q:?}");
}

#[test]
fn portrait_found_on_synthetic_document_and_matches() {
    let Some((engine, data)) = setup() else { return };
    let a = eval::load_oriented_rgb(&data.join(OBAMA_A)).unwrap();
    let b = eval::load_oriented_rgb(&data.join(OBAMA_B)).unwrap();
    let face = engine.detect(&a).unwrap().remove(0);
    for width in [70.0, 90.0] {
        let doc = eval::synthetic_document(&a, &face, width, 7).unwrap();
        let portrait = engine.find_portrait(&doc).unwrap().expect("portrait found");
        assert!((portrait.bbox.width - width).abs() < 0.35 * width, "found width {}", portrait.bbox.width);
        let score = engine.compare(&engine.embed(&doc, &portrait).unwrap(), &embed_main_face(engine, &b));
        eprintln!("document portrait ({width} px) vs selfie: distance {:.3}", score.distance);
        assert!(score.is_match);
    }
}

#[test]
fn portrait_of_a_document_photographed_sideways_or_upside_down_is_found_and_matches() {
    let Some((engine, data)) = setup() else { return };
    let a = eval::load_oriented_rgb(&data.join(OBAMA_A)).unwrap();
    let b = eval::load_oriented_rgb(&data.join(OBAMA_B)).unwrap();
    let face = engine.detect(&a).unwrap().remove(0);
    let doc = eval::synthetic_document(&a, &face, 200.0, 7).unwrap();
    let upright = engine.find_portrait(&doc).unwrap().expect("portrait found upright");
    let selfie = embed_main_face(engine, &b);
    let score = engine.compare(&engine.embed(&doc, &upright).unwrap(), &selfie);
    eprintln!("document upright: portrait vs selfie distance {:.3}", score.distance);
    for (turn, turned) in [
        ("90", image::imageops::rotate90(&doc)),
        ("180", image::imageops::rotate180(&doc)),
        ("270", image::imageops::rotate270(&doc)),
    ] {
        let portrait = engine.find_portrait(&turned).unwrap().expect("portrait found turned");
        // The box is on the turned page as given: same size as upright, sides swapped by a quarter turn.
        let (long, short) = if turn == "180" {
            (portrait.bbox.width, portrait.bbox.height)
        } else {
            (portrait.bbox.height, portrait.bbox.width)
        };
        assert!((long - upright.bbox.width).abs() < 0.2 * upright.bbox.width, "{turn}: {:?}", portrait.bbox);
        assert!(
            (short - upright.bbox.height).abs() < 0.2 * upright.bbox.height,
            "{turn}: {:?}",
            portrait.bbox
        );
        let score = engine.compare(&engine.embed(&turned, &portrait).unwrap(), &selfie);
        eprintln!("document turned {turn}: portrait vs selfie distance {:.3}", score.distance);
        assert!(score.is_match, "{turn}: {score:?}");
    }
}

/// The figures behind `find_portrait`'s upright score (0.905): on the real MRZ dev documents, every
/// portrait found the right way up scores above it and the same page upside down below it (when
/// the detector finds a face there at all), and the search on the upside-down page still returns
/// the confident face. Prints the ranges.
#[test]
fn portraits_score_higher_upright_than_upside_down_on_the_dev_documents() {
    let Some((engine, data)) = setup() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("mrz_docs/dev"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("jpg" | "png")))
        .collect();
    files.sort();
    let (mut upright_min, mut upside_down_max, mut pages) = (f32::MAX, f32::MIN, 0);
    for path in &files {
        let page = eval::load_oriented_rgb(path).unwrap();
        let Some(upright) = engine.detect(&page).unwrap().first().map(|f| f.score) else { continue };
        let turned = image::imageops::rotate180(&page);
        if let Some(down) = engine.detect(&turned).unwrap().first().map(|f| f.score) {
            upside_down_max = upside_down_max.max(down);
        }
        let found = engine.find_portrait(&turned).unwrap().expect("portrait found upside down");
        assert!(found.score >= 0.905, "{}: {}", path.display(), found.score);
        upright_min = upright_min.min(upright);
        pages += 1;
    }
    eprintln!(
        "{pages} pages with a portrait: upright from {upright_min:.3}, upside down up to {upside_down_max:.3}"
    );
    assert!(
        pages >= 20 && upright_min >= 0.905 && upside_down_max < 0.905,
        "{upright_min} {upside_down_max}"
    );
}

#[test]
fn small_portrait_on_large_phone_photo_is_found() {
    let Some((engine, data)) = setup() else { return };
    let a = eval::load_oriented_rgb(&data.join(OBAMA_A)).unwrap();
    let face = engine.detect(&a).unwrap().remove(0);
    // Face 24 px on the 1280x960 render, upscaled 3x: a 72 px portrait on a 3840x2880 photo.
    let doc = eval::synthetic_document(&a, &face, 24.0, 3).unwrap();
    let photo = image::imageops::resize(&doc, 3840, 2880, image::imageops::FilterType::Triangle);
    let portrait = engine.find_portrait(&photo).unwrap().expect("portrait found");
    assert!((portrait.bbox.width - 72.0).abs() < 0.35 * 72.0, "found width {}", portrait.bbox.width);
}

#[test]
fn no_panic_on_degenerate_images() {
    let Some(engine) = engine() else { return };
    for (w, h) in [(0, 0), (1, 1), (3000, 2), (2, 900), (64, 64)] {
        let img = RgbImage::new(w, h);
        assert!(engine.detect(&img).unwrap().is_empty(), "{w}x{h}");
        assert!(engine.find_portrait(&img).unwrap().is_none(), "{w}x{h}");
    }
    let face = idverify_face::Face {
        bbox: idverify_face::BoundingBox { x: 0.0, y: 0.0, width: 10.0, height: 10.0 },
        landmarks: [[5.0, 5.0]; 5],
        score: 0.9,
    };
    assert!(engine.embed(&RgbImage::new(20, 20), &face).is_err());
    let _ = engine.quality(&RgbImage::new(0, 0), &face);
    let bad = engine.compare(&Embedding(vec![0.0; 3]), &Embedding(vec![0.0; 128]));
    assert!(!bad.is_match && bad.confidence == 0.0);
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reference {
    chips: Vec<ReferenceChip>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferenceChip {
    image: String,
    step: u32,
    to_chip: [f64; 4],
    chip_mean: f64,
    descriptor: Vec<f32>,
}

/// The converted ONNX recognizer against dlib's own network on the same chips
/// (fixture made by scripts/peer/make_dlib_reference.py).
#[test]
fn onnx_recognizer_matches_dlib_reference() {
    let Some((engine, data)) = setup() else { return };
    let fixture: Reference =
        serde_json::from_str(include_str!("fixtures/dlib_reference.json")).expect("fixture parses");
    assert!(fixture.chips.len() >= 3);
    for chip_ref in &fixture.chips {
        let full = eval::load_oriented_rgb(&data.join(&chip_ref.image)).unwrap();
        let step = chip_ref.step;
        let image = RgbImage::from_fn(full.width().div_ceil(step), full.height().div_ceil(step), |x, y| {
            *full.get_pixel(x * step, y * step)
        });
        let [a, b, tx, ty] = chip_ref.to_chip;
        let chip = idverify_face::align::warp_bilinear(&image, &Similarity { a, b, tx, ty }, 150).unwrap();
        // dlib's chip is 8-bit, filled by truncation.
        let chip: Vec<[f32; 3]> = chip.iter().map(|p| p.map(|v| v.floor())).collect();
        let mean = chip.iter().map(|p| (p[0] + p[1] + p[2]) as f64).sum::<f64>() / (chip.len() * 3) as f64;
        let ours = engine.embed_chip(&chip).unwrap();
        let dot: f32 = ours.0.iter().zip(&chip_ref.descriptor).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cosine = dot / (norm(&ours.0) * norm(&chip_ref.descriptor));
        let distance = engine.compare(&ours, &Embedding(chip_ref.descriptor.clone())).distance;
        eprintln!(
            "{}: chip mean {:.3} (dlib {:.3}), cosine {cosine:.5}, euclidean {distance:.4}",
            chip_ref.image, mean, chip_ref.chip_mean
        );
        // Border pixels differ slightly (dlib blacks out a pixel whose 2x2 neighbourhood leaves the image).
        assert!((mean - chip_ref.chip_mean).abs() < 0.25, "chip differs from dlib's");
        // Float weights: only float rounding and the 8-bit chip border separate us from dlib.
        assert!(cosine >= 0.9999 && distance <= 0.015, "cosine {cosine}, distance {distance}");
    }
}

/// The fused recognizers on the shipped calibration: SFace embeds, the fused score decides and
/// says so; the cascade leaves clear pairs to dlib.
#[test]
fn fused_and_cascade_decisions_name_their_recognizers() {
    let Some(data) = shared_data() else { return };
    let models_dir = idverify_testkit::models_dir();
    if !models_dir.join(idverify_face::sface::SFACE_FILE).is_file() {
        eprintln!("SKIP: SFace not in {}", models_dir.display());
        return;
    }
    let load = |recognizers| {
        let cfg = FaceEngineConfig {
            models_dir: models_dir.clone(),
            intra_threads: 1,
            sessions: 1,
            target_fmr: 0.001,
            recognizers,
        };
        FaceEngine::load(&cfg).expect("engine loads with the shipped fusion")
    };
    let fused = load(idverify_face::Recognizers::Fused);
    let cascade = load(idverify_face::Recognizers::Cascade);
    let image = |rel: &str| eval::load_oriented_rgb(&data.join(rel)).unwrap();
    let (a, b, c) = (image(OBAMA_A), image(OBAMA_B), image(CLOONEY));
    let face = |img: &RgbImage| fused.detect(img).unwrap().remove(0);
    let (fa, fb, fc) = (face(&a), face(&b), face(&c));
    let second = |img: &RgbImage, f: &idverify_face::Face| fused.embed_second(img, f).unwrap();
    let (sa, sb, sc) = (second(&a, &fa), second(&b, &fb), second(&c, &fc));
    let dlib_same = fused.compare(&fused.embed(&a, &fa).unwrap(), &fused.embed(&b, &fb).unwrap());
    let dlib_diff = fused.compare(&fused.embed(&a, &fa).unwrap(), &fused.embed(&c, &fc).unwrap());
    assert!(fused.needs_second(&dlib_same) && fused.needs_second(&dlib_diff));
    let same = fused.fuse(&dlib_same, &sa, &sb);
    let diff = fused.fuse(&dlib_diff, &sa, &sc);
    eprintln!(
        "fused: same {:.1} %, different {:.1} % (threshold {:.1} %)",
        same.confidence, diff.confidence, same.threshold
    );
    assert!(same.is_match && !diff.is_match);
    assert!(same.confidence >= same.threshold && diff.confidence < diff.threshold);
    assert_eq!(same.recognizers, idverify_face::DLIB_AND_SFACE);
    // Far from dlib's threshold the cascade does not ask SFace.
    assert!(!cascade.needs_second(&dlib_diff), "impostor at distance {}", dlib_diff.distance);
}

/// A second evaluation of the same pairs file reads the embeddings the first one cached, and
/// scores the pairs the same.
#[test]
fn eval_reuses_its_embedding_cache() {
    let Some((engine, data)) = setup() else { return };
    let dir = std::env::temp_dir().join(format!("idverify-embedding-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("pairs.csv");
    let (a, b, c) = (data.join(OBAMA_A), data.join(OBAMA_B), data.join(CLOONEY));
    let rows =
        format!("img_a,img_b,same\n{},{},1\n{},{},0\n", a.display(), b.display(), a.display(), c.display());
    std::fs::write(&csv, rows).unwrap();
    let cache = dir.join("embeddings.json");
    let run = || {
        let mut out = Vec::new();
        let scored = eval::score_pairs_cached(engine, &csv, false, Some(&cache), &mut out).unwrap();
        let distances: Vec<Option<f32>> = scored.pairs.iter().map(|p| p.distance).collect();
        (distances, String::from_utf8(out).unwrap())
    };
    let (first, first_out) = run();
    assert!(cache.is_file() && !first_out.contains("from the cache"), "{first_out}");
    let (second, second_out) = run();
    assert!(second_out.contains("embeddings of 3 of 3 images from the cache"), "{second_out}");
    assert_eq!(first, second);
    assert!(first.iter().all(Option::is_some));
    // Another pairs file sharing the cache sees its own images only.
    let one = dir.join("one.csv");
    std::fs::write(&one, format!("img_a,img_b,same\n{},{},1\n", a.display(), b.display())).unwrap();
    let scored = eval::score_pairs_cached(engine, &one, false, Some(&cache), &mut Vec::new()).unwrap();
    assert_eq!(scored.embeddings.len(), 2);
    assert_eq!(scored.pairs[0].distance, first[0]);
    std::fs::remove_dir_all(&dir).ok();
}
