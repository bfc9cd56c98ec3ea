//! `idverify bench`: what one verify costs on this machine, stage by stage, with the real models
//! and images generated at run time (no data set, nothing personal).
//!
//! Each stage runs once to warm up, then `iterations` times; the figures are medians of the
//! process CPU time per call (all threads, so intra-op threads count too) next to the wall time.
//! Content matters little to the costs measured here: the face detector letterboxes every image to
//! a fixed size, the embedding runs on fixed-size chips, the text detector's cost follows its input
//! size and the recognizer's the crop width. A verify is then composed from the stages the way
//! `verify::VerifyService::verify` runs them (see [`compose`]).

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use idverify_document::{DetectorPass, DocumentEngine, LINE_HEIGHT, MRZ_LINE_MAX_WIDTH, RequestedType};
use idverify_face::{BoundingBox, Face, FaceEngine};
use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;

use crate::engines::{self, EngineSettings};
use crate::imaging::{self, ImageLimits};

/// Sizes of the generated images: a phone photo of a document and a selfie.
const DOCUMENT_SIZE: (u32, u32) = (1600, 1200);
const SELFIE_SIZE: (u32, u32) = (1155, 866);
/// Width of a TD3 MRZ line crop as the reader cuts it (48 px high): most rows of the MRZ dev set
/// are wider (920 px on average) and are read squeezed to the cap (`idverify eval mrz` prints the
/// mean `line_width_px` of the crops it recognizes: 756).
const MRZ_LINE_WIDTH: u32 = MRZ_LINE_MAX_WIDTH;
/// Line reads of a scan whose MRZ is found in the first detector pass: the two lines of a
/// passport (TD3). On the MRZ dev set a scan recognizes more on average (other long rows, second
/// reads); `idverify eval mrz` prints the mean.
const LINES_PER_SCAN: u32 = 2;

pub struct BenchOptions {
    pub iterations: usize,
}

/// Median CPU and wall time of one call, in ms.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub cpu_ms: f64,
    pub wall_ms: f64,
}

/// The figures of the last line.
#[derive(Clone, Copy, Debug)]
pub struct BenchSummary {
    pub cpu_ms_per_verify: f64,
    pub verifies_per_core_s: f64,
    pub scan_ms: f64,
    pub face_ms: f64,
}

/// CPU time of the whole process, in ms.
fn process_cpu_ms() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_PROCESS_CPUTIME_ID is always valid.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Runs `f` once to warm up, then `iterations` times.
fn measure<R>(iterations: usize, mut f: impl FnMut() -> anyhow::Result<R>) -> anyhow::Result<Timing> {
    std::hint::black_box(f()?);
    let (mut cpu, mut wall) = (Vec::with_capacity(iterations), Vec::with_capacity(iterations));
    for _ in 0..iterations.max(1) {
        let (c0, t0) = (process_cpu_ms(), Instant::now());
        std::hint::black_box(f()?);
        wall.push(t0.elapsed().as_secs_f64() * 1000.0);
        // A clock that does not move still counts as a tiny positive cost, never zero.
        cpu.push((process_cpu_ms() - c0).max(1e-3));
    }
    Ok(Timing { cpu_ms: median(&mut cpu), wall_ms: median(&mut wall) })
}

/// A small deterministic generator (xorshift32) for the synthetic images.
struct Noise(u32);

impl Noise {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}

/// A photo-like picture: smooth gradients plus fine noise, so its JPEG has a realistic entropy.
pub(crate) fn photo(width: u32, height: u32) -> RgbImage {
    let mut noise = Noise(0x9E37_79B9);
    RgbImage::from_fn(width, height, |x, y| {
        let n = (noise.next() & 0x1F) as i32 - 16;
        let base = |v: u32, period: u32| ((v % period) * 255 / period) as i32;
        let px = |c: i32| (c + n).clamp(0, 255) as u8;
        image::Rgb([px(base(x, 517)), px(base(y, 389)), px(base(x + y, 733))])
    })
}

/// Dark glyph-sized blocks along a text row starting at (`x`, `y`).
fn draw_row(img: &mut RgbImage, noise: &mut Noise, (x, y): (u32, u32), glyphs: u32, (gw, gh): (u32, u32)) {
    for g in 0..glyphs {
        let gx = x + g * (gw + gw / 3);
        // Some glyph cells stay empty (spaces and fillers), the others get a block of random shape.
        if noise.next().is_multiple_of(5) {
            continue;
        }
        let (inset_x, inset_y) = (noise.next() % (gw / 3 + 1), noise.next() % (gh / 4 + 1));
        for yy in y + inset_y..y + gh {
            for xx in gx + inset_x / 2..gx + gw - inset_x / 2 {
                if xx < img.width() && yy < img.height() {
                    img.put_pixel(xx, yy, image::Rgb([30, 30, 40]));
                }
            }
        }
    }
}

/// A document-like page: light background, a portrait-sized dark area, rows of text, and two
/// MRZ-like rows of evenly spaced glyphs at the bottom.
pub(crate) fn document_page(width: u32, height: u32) -> RgbImage {
    let mut noise = Noise(0x1234_5678);
    let mut img = RgbImage::from_fn(width, height, |x, y| {
        let v = 225 + ((x / 7 + y / 11) % 16) as u8;
        image::Rgb([v, v - 5, v - 12])
    });
    for y in height / 6..height / 2 {
        for x in width / 16..width / 3 {
            img.put_pixel(x, y, image::Rgb([120, 100, 90]));
        }
    }
    let glyph = (width / 60, height / 40);
    for row in 0..6 {
        let y = height / 6 + row * glyph.1 * 2;
        draw_row(&mut img, &mut noise, (width * 2 / 5, y), 20, glyph);
    }
    for line in 0..2 {
        let y = height * 3 / 4 + line * glyph.1 * 3 / 2;
        draw_row(&mut img, &mut noise, (width / 20, y), 44, (width / 55, glyph.1));
    }
    img
}

/// A line crop as the recognizer gets it: `LINE_HEIGHT` high, 44 glyphs across.
pub(crate) fn line_crop(width: u32) -> RgbImage {
    let mut noise = Noise(0xCAFE_F00D);
    let mut img = RgbImage::from_pixel(width, LINE_HEIGHT, image::Rgb([230, 230, 225]));
    let glyph_w = width * 3 / (44 * 4 + 4);
    draw_row(&mut img, &mut noise, (glyph_w / 2, LINE_HEIGHT / 5), 44, (glyph_w, LINE_HEIGHT * 3 / 5));
    img
}

/// A PDF417 symbol holding made-up licence data (AAMVA layout), 3 px modules, on a page of the
/// document size.
fn licence_page(width: u32, height: u32) -> anyhow::Result<RgbImage> {
    use rxing::Writer;
    let body = "DLDCAD\nDCSSAMPLE\nDACTEST\nDADBENCH\nDBB01011980\nDBA01012040\nDBC1\nDAQX00000000\n\
                DAG1 EXAMPLE RD\nDAIANYTOWN\nDAJVA\nDAK000000000  \nDCGUSA\r";
    let payload = format!("@\n\u{1e}\rANSI 636000080001DL0031{:04}{body}", body.len());
    let matrix = rxing::pdf417::PDF417Writer
        .encode(&payload, &rxing::BarcodeFormat::PDF_417, 0, 0)
        .map_err(|e| anyhow::anyhow!("PDF417 encoding failed: {e}"))?;
    let scale = 3;
    let (mw, mh) = (matrix.getWidth(), matrix.getHeight());
    let (ox, oy) = (width.saturating_sub(mw * scale) / 2, height.saturating_sub(mh * scale) * 2 / 3);
    let mut img = RgbImage::from_pixel(width, height, image::Rgb([240, 240, 235]));
    for y in 0..(mh * scale).min(height - oy) {
        for x in 0..(mw * scale).min(width - ox) {
            if matrix.get(x / scale, y / scale) {
                img.put_pixel(ox + x, oy + y, image::Rgb([0, 0, 0]));
            }
        }
    }
    Ok(img)
}

fn jpeg(img: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90).encode_image(img)?;
    Ok(out)
}

/// A face of a plausible size and pose in the middle of `img` (the embedding's cost does not
/// depend on what the chip shows).
pub(crate) fn synthetic_face(img: &RgbImage) -> Face {
    let (cx, cy) = (img.width() as f32 / 2.0, img.height() as f32 / 2.0);
    let s = img.height() as f32 / 4.0;
    Face {
        bbox: BoundingBox { x: cx - s / 2.0, y: cy - s * 0.6, width: s, height: s * 1.2 },
        landmarks: [
            [cx - 0.2 * s, cy - 0.15 * s],
            [cx + 0.2 * s, cy - 0.15 * s],
            [cx, cy + 0.05 * s],
            [cx - 0.15 * s, cy + 0.3 * s],
            [cx + 0.15 * s, cy + 0.3 * s],
        ],
        score: 0.9,
    }
}

/// Per-stage timings.
pub struct Stages {
    pub decode_document: Timing,
    pub decode_selfie: Timing,
    pub face_detect_selfie: Timing,
    pub face_detect_document: Timing,
    pub face_quality: Timing,
    pub embed: Timing,
    pub text_detect_lower_part: Timing,
    pub text_detect_page: Timing,
    pub text_detect_page_full: Timing,
    pub recognize_line: Timing,
    pub pdf417: Timing,
    pub licence_scan: Timing,
}

/// A verify of a passport whose MRZ reads in the first detector pass and whose portrait the
/// detector finds directly, as `VerifyService::verify` runs it: both images decoded; the scan
/// (text detection on the lower part of the page, then the MRZ lines recognized); the selfie
/// branch (detection, quality, embedding) and the portrait branch (detection, embedding).
pub fn compose(s: &Stages) -> BenchSummary {
    let scan = s.text_detect_lower_part.cpu_ms + f64::from(LINES_PER_SCAN) * s.recognize_line.cpu_ms;
    let face = s.face_detect_selfie.cpu_ms
        + s.face_quality.cpu_ms
        + s.face_detect_document.cpu_ms
        + 2.0 * s.embed.cpu_ms;
    let total = s.decode_document.cpu_ms + s.decode_selfie.cpu_ms + scan + face;
    BenchSummary {
        cpu_ms_per_verify: total,
        verifies_per_core_s: 1000.0 / total,
        scan_ms: scan,
        face_ms: face,
    }
}

fn measure_stages(
    face: &FaceEngine,
    document: &DocumentEngine,
    limits: ImageLimits,
    iterations: usize,
) -> anyhow::Result<Stages> {
    let today = NaiveDate::from_ymd_opt(2030, 1, 1).context("date")?;
    let page = document_page(DOCUMENT_SIZE.0, DOCUMENT_SIZE.1);
    let selfie = photo(SELFIE_SIZE.0, SELFIE_SIZE.1);
    let (page_jpeg, selfie_jpeg) = (jpeg(&page)?, jpeg(&selfie)?);
    let chip_face = synthetic_face(&selfie);
    let line = line_crop(MRZ_LINE_WIDTH);
    let licence = licence_page(DOCUMENT_SIZE.0, DOCUMENT_SIZE.1)?;
    if idverify_document::barcode::decode_pdf417(&licence).is_none() {
        bail!("the generated PDF417 symbol did not decode");
    }
    let n = iterations;
    Ok(Stages {
        decode_document: measure(n, || Ok(imaging::decode(&page_jpeg, limits)?))?,
        decode_selfie: measure(n, || Ok(imaging::decode(&selfie_jpeg, limits)?))?,
        face_detect_selfie: measure(n, || Ok(face.detect(&selfie)?))?,
        face_detect_document: measure(n, || Ok(face.detect(&page)?))?,
        face_quality: measure(n, || Ok(face.quality(&selfie, &chip_face)))?,
        embed: measure(n, || Ok(face.embed(&selfie, &chip_face)?))?,
        text_detect_lower_part: measure(n, || Ok(document.detect_text(&page, DetectorPass::LowerPart)?))?,
        text_detect_page: measure(n, || Ok(document.detect_text(&page, DetectorPass::Page)?))?,
        text_detect_page_full: measure(n, || Ok(document.detect_text(&page, DetectorPass::PageFull)?))?,
        recognize_line: measure(n, || Ok(document.recognize_line(&line)?))?,
        pdf417: measure(n, || Ok(idverify_document::barcode::decode_pdf417(&licence)))?,
        licence_scan: measure(n, || Ok(document.scan(&licence, RequestedType::Auto, today)?))?,
    })
}

/// `idverify bench`: prints the machine, the stages, the composed verify; the last line is
/// `cpu_ms_per_verify=… verifies_per_core_s=… scan_ms=… face_ms=…`.
pub fn run(
    settings: &EngineSettings,
    limits: ImageLimits,
    opts: &BenchOptions,
    out: &mut dyn Write,
) -> anyhow::Result<BenchSummary> {
    let cpu = crate::cpu_info::CpuInfo::read();
    writeln!(out, "machine")?;
    cpu.describe(out)?;
    writeln!(
        out,
        "  engines: intra_threads={} sessions={} iterations={}",
        settings.intra_threads, settings.sessions, opts.iterations
    )?;
    let face = engines::load_face(settings)?;
    let document = engines::load_document(settings)?;
    let s = measure_stages(&face, &document, limits, opts.iterations)?;
    writeln!(out, "stages (median per call; cpu = process CPU time, all threads)")?;
    let (dw, dh) = DOCUMENT_SIZE;
    let (sw, sh) = SELFIE_SIZE;
    let rows: [(String, Timing); 12] = [
        (format!("decode JPEG {dw}x{dh} (document)"), s.decode_document),
        (format!("decode JPEG {sw}x{sh} (selfie)"), s.decode_selfie),
        (format!("face detect {sw}x{sh}"), s.face_detect_selfie),
        (format!("face detect {dw}x{dh}"), s.face_detect_document),
        ("face quality".into(), s.face_quality),
        ("face embed (align + 4 chips)".into(), s.embed),
        (format!("text detect, lower part at 640 ({dw}x{dh} page)"), s.text_detect_lower_part),
        (format!("text detect, page at 640 ({dw}x{dh} page)"), s.text_detect_page),
        (format!("text detect, page at 960 ({dw}x{dh} page)"), s.text_detect_page_full),
        (format!("text recognize, one line {MRZ_LINE_WIDTH}x{LINE_HEIGHT}"), s.recognize_line),
        (format!("PDF417 decode ({dw}x{dh} page)"), s.pdf417),
        ("scan of a licence page (MRZ passes, then PDF417)".into(), s.licence_scan),
    ];
    for (name, t) in &rows {
        writeln!(out, "  {name:<52} cpu_ms={:>7.1} wall_ms={:>7.1}", t.cpu_ms, t.wall_ms)?;
    }
    let summary = compose(&s);
    writeln!(out, "verify (passport; MRZ read in the first detector pass; portrait found directly)")?;
    writeln!(
        out,
        "  scan = text detect (lower part) + {LINES_PER_SCAN} x text recognize = {:.1} ms",
        summary.scan_ms
    )?;
    writeln!(
        out,
        "  face = detect selfie + quality + detect document + 2 x embed = {:.1} ms",
        summary.face_ms
    )?;
    writeln!(
        out,
        "  cpu per verify = decode document + decode selfie + scan + face = {:.1} ms",
        summary.cpu_ms_per_verify
    )?;
    writeln!(
        out,
        "  capacity: {:.1} verifies per second per core (scan/face = {:.2})",
        summary.verifies_per_core_s,
        summary.scan_ms / summary.face_ms
    )?;
    writeln!(
        out,
        "cpu_ms_per_verify={:.1} verifies_per_core_s={:.2} scan_ms={:.1} face_ms={:.1}",
        summary.cpu_ms_per_verify, summary.verifies_per_core_s, summary.scan_ms, summary.face_ms
    )?;
    Ok(summary)
}
