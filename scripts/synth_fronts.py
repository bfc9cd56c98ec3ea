#!/usr/bin/env python3
"""Seeded synthetic card fronts for the visual-zone reader (issue 16): US (AAMVA) and EU licences
and ID cards (and Canadian licences with --layouts ca), with a portrait from LFW and photographic
damage.

No real licence front is in ../shared/data, so the dev set of `idverify eval viz` is built here:
the layouts follow the AAMVA DL/ID Card Design Standard (numbered fields 1, 2, 3, 4a, 4b, 4d, 5,
8, 9, 12, 15, 16, 18 with their labels, MM/DD/YYYY dates) and Directive 2006/126/EC (fields 1 to
9, DD.MM.YYYY dates, the flag's distinguishing sign, and for France the ISO/IEC 18013-1 line with
its check digits); the ID cards print bilingual labels above their values. Names, numbers and dates
are made up from the seed; only the portrait is a real photograph (LFW), so that the front can be
verified against another photo of the same person.

Writes DIR/NNN.jpg and DIR/manifest.csv (`image,layout,jurisdiction,selfie,` then the printed
fields, dates ISO). `selfie` is another LFW photo of the portrait's person, relative to --lfw.

Usage: synth_fronts.py --lfw ../shared/data/lfw/dev --out DIR [--count N] [--seed S] [--clean]
Needs numpy and Pillow (the models venv has both: ~/.cache/idverify/venv/bin/python).
"""
import argparse
import csv
import datetime as dt
import os
import string
import unicodedata

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

CARD_W, CARD_H = 1012, 638  # ID-1 at 300 dpi
SURNAMES = ["MARTIN", "BERNARD", "DUBOIS", "MUELLER", "SCHMIDT", "GARCIA", "ROSSI", "SAMPLE", "JOHNSON",
            "WILLIAMS", "MORENO", "BIANCHI", "LEFEBVRE", "WAGNER", "FERRARI", "ANDERSON", "THOMPSON", "KOWALSKI"]
GIVEN = ["PAUL", "MARIE", "ANNA", "JOHN", "LUCAS", "SOFIA", "ELENA", "DAVID", "CLAIRE", "MARCO", "JAMES", "EMMA",
         "NOAH", "LAURA", "PETER", "JULIA"]
STREETS = ["MAIN STREET", "OAK AVENUE", "RUE DE LA PAIX", "HAUPTSTRASSE", "CALLE MAYOR", "VIA ROMA", "PINE ROAD"]
US_STATES = {  # state: (header, licence number shape: A letter, 9 digit), towns
    "CA": ("CALIFORNIA", "A9999999", "SACRAMENTO"),
    "TX": ("TEXAS", "99999999", "AUSTIN"),
    "PA": ("PENNSYLVANIA", "99999999", "HARRISBURG"),
    "FL": ("FLORIDA", "A999999999999", "TALLAHASSEE"),
    "CO": ("COLORADO", "999999999", "DENVER"),
    "NJ": ("NEW JERSEY", "A99999999999999", "TRENTON"),
}
CA_PROVINCES = {  # province: (header, licence number shape, town); only with --layouts ca
    "AB": ("ALBERTA", "999999999", "EDMONTON"),
    "BC": ("BRITISH COLUMBIA", "9999999", "VICTORIA"),
    "ON": ("ONTARIO", "A99999999999999", "TORONTO"),
    "QC": ("QUÉBEC", "A999999999999", "QUÉBEC"),
}
EU = {  # alpha-3: (flag sign, header, licence title, town)
    "FRA": ("F", "RÉPUBLIQUE FRANÇAISE", "PERMIS DE CONDUIRE", "PARIS"),
    "DEU": ("D", "BUNDESREPUBLIK DEUTSCHLAND", "FÜHRERSCHEIN", "BERLIN"),
    "ESP": ("E", "REINO DE ESPAÑA", "PERMISO DE CONDUCCIÓN", "MADRID"),
    "ITA": ("I", "REPUBBLICA ITALIANA", "PATENTE DI GUIDA", "ROMA"),
}
ID_CARDS = {  # alpha-3: (header, title, (surname, given, sex, nationality, birth, number, expiry) labels)
    "FRA": ("RÉPUBLIQUE FRANÇAISE", "CARTE NATIONALE D'IDENTITÉ / IDENTITY CARD",
            ("NOM / Surname", "Prénoms / Given names", "SEXE / Sex", "NATIONALITÉ / Nationality",
             "DATE DE NAISS. / Date of birth", "N° DU DOCUMENT / Document No", "DATE D'EXPIR. / Expiry date")),
    "DEU": ("BUNDESREPUBLIK DEUTSCHLAND", "PERSONALAUSWEIS / IDENTITY CARD",
            ("Name / Surname", "Vornamen / Given names", "Geschlecht / Sex", "Staatsangehörigkeit / Nationality",
             "Geburtsdatum / Date of birth", "Ausweisnummer / Document No", "Gültig bis / Date of expiry")),
}
FIELDS = ["surname", "given_names", "birth_date", "issue_date", "expiry_date", "number", "sex", "address",
          "nationality", "eu_mrz"]


def check_digit(s):
    values = {c: i for i, c in enumerate(string.digits + string.ascii_uppercase)}
    values["<"] = 0
    return str(sum(values[c] * (7, 3, 1)[i % 3] for i, c in enumerate(s)) % 10)


def shape_to_number(rng, shape):
    return "".join(str(rng.choice(list(string.ascii_uppercase))) if c == "A" else str(rng.integers(0, 10))
                   for c in shape)


# DejaVu Sans (Debian's fonts-dejavu-core) has every accent the labels use; Pillow's bundled font
# lacks some (ü, ö), so without DejaVu the labels are printed without accents.
DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def font(size):
    return ImageFont.truetype(DEJAVU, size) if os.path.exists(DEJAVU) else ImageFont.load_default(size=size)


def printable(text):
    if os.path.exists(DEJAVU):
        return text
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def person(rng, today):
    birth = dt.date(int(rng.integers(1950, 2004)), int(rng.integers(1, 13)), int(rng.integers(1, 29)))
    # Valid cards (issued within four years, valid for at least eight), so that a verify can pass.
    issue = today - dt.timedelta(days=int(rng.integers(30, 1460)))
    years = int(rng.choice([8, 10, 15]))
    expiry = issue.replace(year=issue.year + years, day=min(issue.day, 28) if issue.month == 2 else issue.day)
    return {
        "surname": str(rng.choice(SURNAMES)),
        "given_names": str(rng.choice(GIVEN)),
        "birth_date": birth,
        "issue_date": issue,
        "expiry_date": expiry,
        "sex": str(rng.choice(["M", "F"])),
        "address": f"{int(rng.integers(1, 300))} {rng.choice(STREETS)}",
    }


def paste_portrait(card, face_path, box):
    face = Image.open(face_path).convert("RGB")
    # LFW's 250 px images have the face in the middle: keep the head and shoulders.
    face = face.crop((55, 35, 195, 215)).resize((box[2] - box[0], box[3] - box[1]), Image.BICUBIC)
    card.paste(face, box[:2])


def us_front(rng, p, state, face_path):
    """A US front, or a Canadian one (same AAMVA numbering; `LICENCE`, a bilingual title, dates
    year first, a postal code) for a province."""
    canadian = state in CA_PROVINCES
    header, shape, town = CA_PROVINCES[state] if canadian else US_STATES[state]
    card = Image.new("RGB", (CARD_W, CARD_H), (222, 232, 240))
    d = ImageDraw.Draw(card)
    d.rectangle((0, 0, CARD_W, 78), fill=(30, 70, 140))
    d.text((28, 14), printable(header), font=font(44), fill=(255, 255, 255))
    if canadian:
        d.text((600, 6), "DRIVER'S LICENCE", font=font(30), fill=(255, 255, 255))
        d.text((600, 42), "PERMIS DE CONDUIRE", font=font(26), fill=(255, 255, 255))
        d.text((860, 96), "CANADA", font=font(26), fill=(30, 30, 30))
    else:
        d.text((600, 22), "DRIVER LICENSE", font=font(34), fill=(255, 255, 255))
        d.text((900, 96), "USA", font=font(26), fill=(30, 30, 30))
    paste_portrait(card, face_path, (28, 120, 288, 454))
    number = shape_to_number(rng, shape)
    fmt = (lambda x: x.strftime("%Y/%m/%d")) if canadian else (lambda x: x.strftime("%m/%d/%Y"))  # noqa: E731
    if canadian:  # A1A 1A1
        letter = lambda: str(rng.choice(list("ABCEGHJKLMNPRSTVXY")))  # noqa: E731
        digit = lambda: str(rng.integers(0, 10))  # noqa: E731
        code = f"{letter()}{digit()}{letter()} {digit()}{letter()}{digit()}"
    else:
        code = str(int(rng.integers(10000, 99999)))
    given = p["given_names"]
    x, f, ink = 320, font(28), (20, 20, 20)
    rows = [
        (120, f"4d DLN {number}"),
        (170, f"3 DOB {fmt(p['birth_date'])}"),
        (220, f"4b EXP {fmt(p['expiry_date'])}"),
        (275, f"1 {p['surname']}"),
        (315, f"2 {given}"),
        (365, f"8 {p['address']}"),
        (402, f"{town}, {state} {code}"),
        (455, f"4a ISS {fmt(p['issue_date'])}"),
        (505, f"15 SEX {p['sex']}   16 HGT 5'-{int(rng.integers(0, 12)):02d}\"   18 EYES BRO"),
        (555, "9 CLASS C    12 RSTR NONE"),
    ]
    for y, text in rows:
        d.text((x, y), printable(text), font=f, fill=ink)
    d.text((28, 590), f"5 DD {int(rng.integers(10**11, 10**12))}", font=font(22), fill=ink)
    fields = dict(p, number=number, address=f"{p['address']}, {rows[6][1]}", nationality="", eu_mrz="")
    return card, "viz_aamva", state, fields


def eu_front(rng, p, country, face_path):
    sign, header, title, town = EU[country]
    card = Image.new("RGB", (CARD_W, CARD_H), (236, 218, 226))
    d = ImageDraw.Draw(card)
    d.rectangle((18, 18, 118, 118), fill=(20, 50, 150))
    d.text((52 if len(sign) == 1 else 40, 48), sign, font=font(44), fill=(255, 255, 255))
    d.text((150, 20), printable(title), font=font(40), fill=(40, 40, 40))
    d.text((150, 72), printable(header), font=font(28), fill=(40, 40, 40))
    paste_portrait(card, face_path, (28, 150, 288, 484))
    number = f"{int(rng.integers(10, 99))}{rng.choice(list('ABCDEFGH'))}{rng.choice(list('ABCDEFGH'))}" \
             f"{int(rng.integers(0, 99999)):05d}"
    fmt = lambda x: x.strftime("%d.%m.%Y")  # noqa: E731
    x, f, ink = 320, font(28), (20, 20, 20)
    rows = [
        (150, f"1. {p['surname']}"),
        (195, f"2. {p['given_names']}"),
        (240, f"3. {fmt(p['birth_date'])} {town}"),
        (285, f"4a. {fmt(p['issue_date'])}   4b. {fmt(p['expiry_date'])}"),
        (330, "4c. PRÉFECTURE" if country == "FRA" else "4c. STADT"),
        (375, f"5. {number}"),
        (440, "9. AM/A1/B1/B"),
    ]
    for y, text in rows:
        d.text((x, y), printable(text), font=f, fill=ink)
    eu_mrz = ""
    if country == "FRA":
        head = f"D1FRA{number}"
        body = f"{head}{check_digit(head)}{p['expiry_date'].strftime('%y%m%d')}{(p['surname'] + '<' * 8)[:8]}"
        eu_mrz = body + check_digit(body)
        d.text((60, 570), eu_mrz, font=font(34), fill=ink)
    # An EU licence prints neither the holder's sex nor (on the front) an address.
    fields = dict(p, number=number, address="", nationality="", sex="", eu_mrz=eu_mrz)
    return card, "viz_eu_dl", country, fields


def id_front(rng, p, country, face_path):
    header, title, labels = ID_CARDS[country]
    card = Image.new("RGB", (CARD_W, CARD_H), (225, 236, 228))
    d = ImageDraw.Draw(card)
    d.text((300, 16), printable(header), font=font(30), fill=(30, 30, 90))
    d.text((300, 56), printable(title), font=font(24), fill=(30, 30, 90))
    paste_portrait(card, face_path, (28, 130, 288, 464))
    number = "".join(str(rng.choice(list(string.ascii_uppercase + string.digits))) for _ in range(9))
    fmt = lambda x: x.strftime("%d %m %Y")  # noqa: E731
    lab, val, ink = font(18), font(30), (20, 20, 20)
    surname, given, sex, nationality, birth, number_label, expiry = labels

    def field(x, y, label, value):
        d.text((x, y), printable(label), font=lab, fill=(70, 70, 70))
        d.text((x, y + 26), value, font=val, fill=ink)

    field(320, 120, surname, p["surname"])
    field(320, 195, given, p["given_names"])
    field(320, 270, sex, p["sex"])
    field(320, 345, nationality, country)
    field(690, 345, birth, fmt(p["birth_date"]))
    field(320, 420, number_label, number)
    field(690, 420, expiry, fmt(p["expiry_date"]))
    fields = dict(p, number=number, address="", nationality=country, issue_date="", eu_mrz="")
    return card, "viz_id_card", country, fields


def damage(rng, card):
    """A phone photo of the card: on a background, slightly turned in perspective, glare, blur, JPEG."""
    bg_w, bg_h = int(CARD_W * 1.25), int(CARD_H * 1.35)
    bg = Image.new("RGB", (bg_w, bg_h), tuple(int(v) for v in rng.integers(40, 140, 3)))
    ox, oy = int(rng.integers(40, bg_w - CARD_W - 40)), int(rng.integers(40, bg_h - CARD_H - 40))
    bg.paste(card, (ox, oy))
    # Perspective: each corner moved by up to 2 % of the card.
    j = lambda: float(rng.uniform(-0.02, 0.02)) * CARD_W  # noqa: E731
    src = [(ox + j(), oy + j()), (ox + CARD_W + j(), oy + j()), (ox + CARD_W + j(), oy + CARD_H + j()),
           (ox + j(), oy + CARD_H + j())]
    dst = [(ox, oy), (ox + CARD_W, oy), (ox + CARD_W, oy + CARD_H), (ox, oy + CARD_H)]
    coeffs = perspective_coeffs(dst, src)
    img = bg.transform(bg.size, Image.PERSPECTIVE, coeffs, Image.BICUBIC)
    arr = np.asarray(img).astype(np.float32)
    if rng.random() < 0.5:  # glare: a soft bright ellipse away from the text column's start
        yy, xx = np.mgrid[0:bg_h, 0:bg_w]
        cx, cy = rng.uniform(0.5, 0.9) * bg_w, rng.uniform(0.2, 0.8) * bg_h
        r = rng.uniform(0.08, 0.15) * bg_w
        arr += 70 * np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))[..., None]
    arr += rng.normal(0, rng.uniform(1, 5), arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.6:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.4, 1.1))))
    return img


def perspective_coeffs(dst, src):
    """PIL's 8 perspective coefficients mapping output points `dst` to input points `src`."""
    a = []
    for (x, y), (u, v) in zip(dst, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    b = [c for point in src for c in point]
    return np.linalg.solve(np.array(a, float), np.array(b, float)).tolist()


def people_with_two_photos(lfw):
    out = []
    for name in sorted(n for n in os.listdir(lfw) if os.path.isdir(os.path.join(lfw, n))):
        photos = sorted(f for f in os.listdir(os.path.join(lfw, name)) if f.endswith(".jpg"))
        if len(photos) >= 2:
            out.append((name, photos))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lfw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--clean", action="store_true", help="no photographic damage (the card as printed)")
    ap.add_argument("--today", default="2026-12-03", help="dates are made relative to this day")
    ap.add_argument("--layouts", default="us,eu,id",
                    help="layouts in turn, of us, eu, id and ca (Canadian licences; not in the default set, "
                         "so that the seeded dev set stays as it was)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    today = dt.date.fromisoformat(args.today)
    os.makedirs(args.out, exist_ok=True)
    people = people_with_two_photos(args.lfw)
    all_makers = {"us": (sorted(US_STATES), us_front), "eu": (sorted(EU), eu_front),
                  "id": (sorted(ID_CARDS), id_front), "ca": (sorted(CA_PROVINCES), us_front)}
    makers = [(kind, *all_makers[kind]) for kind in args.layouts.split(",")]
    rows = []
    for i in range(args.count):
        kind, places, make = makers[i % len(makers)]
        place = places[(i // len(makers)) % len(places)]
        name, photos = people[int(rng.integers(0, len(people)))]
        card, layout, jurisdiction, fields = make(rng, person(rng, today), place, os.path.join(args.lfw, name, photos[0]))
        img = card if args.clean else damage(rng, card)
        file = f"{i:03d}.jpg"
        img.save(os.path.join(args.out, file), quality=int(rng.integers(70, 93)))
        row = {"image": file, "layout": layout, "jurisdiction": jurisdiction, "selfie": f"{name}/{photos[1]}"}
        for key in FIELDS:
            value = fields.get(key, "")
            row[key] = value.isoformat() if isinstance(value, dt.date) else value
        rows.append(row)
    with open(os.path.join(args.out, "manifest.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "layout", "jurisdiction", "selfie"] + FIELDS)
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} fronts to {args.out}")


if __name__ == "__main__":
    main()
