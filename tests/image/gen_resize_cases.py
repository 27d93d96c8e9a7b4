#!/usr/bin/python3
"""Dev-time generator of the Pillow reference data in tests/data/image/ (NOT run by tests).

Needs Pillow 9.4 (the reference's version, Debian bookworm `python3-pil`) and numpy; run it
with the system interpreter: /usr/bin/python3 tests/image/gen_resize_cases.py

Writes (all PNGs are lossless, so the C++ tests can read them with the library itself):
  noise_61x47.png, tiny_3x2.png, stripes_40x30.png      resize inputs (RGB)
  resize/<input>_<W>x<H>.png + resize_cases.txt          Image.resize((W,H), LANCZOS)
  luma/noise_61x47_L.png                                 convert("L") of noise_61x47.png
  decode/<name>.<ext> + decode/<name>.expected.png + decode_cases.txt
        load_image semantics: ImageOps.exif_transpose(Image.open(f)).convert("RGB")
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
import PIL
from PIL import Image, ImageOps

assert PIL.__version__ == "9.4.0", f"need Pillow 9.4.0 (reference), got {PIL.__version__}"

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "image")
rng = np.random.RandomState(20240917)


def save(im, rel):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im.save(path)
    return rel


def write_bytes(rel, data):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return rel


# ----------------------------------------------------------------------------- inputs
noise = rng.randint(0, 256, size=(47, 61, 3)).astype(np.uint8)
noise[0:3, :, :] = 255  # saturated rows/cols: overshoot must clip at 255 / 0
noise[:, 0:2, :] = 0
tiny = rng.randint(0, 256, size=(2, 3, 3)).astype(np.uint8)
stripes = np.zeros((30, 40, 3), np.uint8)
stripes[:, ::4, 0] = 255  # hard edges: lanczos ringing is clipped
stripes[::3, :, 1] = 255
stripes[:, :, 2] = np.linspace(0, 255, 40).astype(np.uint8)[None, :]

inputs = {
    "noise_61x47.png": Image.fromarray(noise, "RGB"),
    "tiny_3x2.png": Image.fromarray(tiny, "RGB"),
    "stripes_40x30.png": Image.fromarray(stripes, "RGB"),
}
for name, im in inputs.items():
    save(im, name)

# ----------------------------------------------------------------------------- resize
sizes = {
    "noise_61x47.png": [(17, 13), (30, 23), (60, 47), (61, 20), (128, 100), (97, 61), (1, 1),
                        (200, 5), (7, 5), (64, 64), (62, 48), (31, 94)],
    "tiny_3x2.png": [(16, 9), (1, 1), (5, 3), (3, 7)],
    "stripes_40x30.png": [(13, 11), (80, 60), (27, 45), (40, 16)],
}
lines = []
for name, targets in sizes.items():
    src = Image.open(os.path.join(OUT, name)).convert("RGB")
    for w, h in targets:
        out = src.resize((w, h), resample=Image.LANCZOS)
        rel = save(out, f"resize/{name[:-4]}_{w}x{h}.png")
        lines.append(f"{name} {w} {h} {rel}")
with open(os.path.join(OUT, "resize_cases.txt"), "w") as f:
    f.write("# input width height expected  (Pillow 9.4 Image.resize(..., LANCZOS))\n")
    f.write("\n".join(lines) + "\n")

# ----------------------------------------------------------------------------- luma
save(inputs["noise_61x47.png"].convert("L"), "luma/noise_61x47_L.png")

# ----------------------------------------------------------------------------- decode
photo = np.zeros((29, 37, 3), np.uint8)
yy, xx = np.mgrid[0:29, 0:37]
photo[..., 0] = (xx * 7) % 256
photo[..., 1] = (yy * 9) % 256
photo[..., 2] = ((xx + yy) * 5) % 256
photo = np.clip(photo.astype(int) + rng.randint(-20, 21, size=photo.shape), 0, 255).astype(np.uint8)
photo_im = Image.fromarray(photo, "RGB")
alpha = Image.fromarray(rng.randint(0, 256, size=(29, 37)).astype(np.uint8), "L")


def png16_rgb(arr16):
    """Hand-written 16-bit RGB PNG (Pillow cannot write one)."""
    h, w, _ = arr16.shape
    raw = b"".join(b"\x00" + arr16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_with_xmp(im, orientation):
    """PNG with an uncompressed iTXt XML:com.adobe.xmp chunk carrying tiff:Orientation."""
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    xmp = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description '
           f'tiff:Orientation="{orientation}"/></rdf:RDF></x:xmpmeta>')
    info.add_itxt("XML:com.adobe.xmp", xmp, zip=False)
    b = io.BytesIO()
    im.save(b, "PNG", pnginfo=info)
    return b.getvalue()


def exif_with_orientation(o):
    e = Image.Exif()
    e[0x0112] = o
    return e.tobytes()


small = Image.fromarray(rng.randint(0, 256, size=(7, 13, 3)).astype(np.uint8), "RGB")

cases = {}  # name -> encoded bytes


def enc(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


cases["photo_420.jpg"] = enc(photo_im, "JPEG", quality=90, subsampling=2)
cases["photo_422.jpg"] = enc(photo_im, "JPEG", quality=75, subsampling=1)
cases["photo_444_progressive.jpg"] = enc(photo_im, "JPEG", quality=90, subsampling=0,
                                         progressive=True)
cases["gray.jpg"] = enc(photo_im.convert("L"), "JPEG", quality=90)
cases["cmyk.jpg"] = enc(photo_im.convert("CMYK"), "JPEG", quality=90)
rgba = photo_im.copy()
rgba.putalpha(alpha)
cases["rgba.png"] = enc(rgba, "PNG")
la = photo_im.convert("L")
la.putalpha(alpha)
cases["la.png"] = enc(la.convert("LA"), "PNG")
cases["gray.png"] = enc(photo_im.convert("L"), "PNG")
cases["bilevel.png"] = enc(photo_im.convert("1"), "PNG")
pal = photo_im.convert("P", palette=Image.ADAPTIVE, colors=16)
cases["palette_trns.png"] = enc(pal, "PNG", transparency=3)
cases["rgb16.png"] = png16_rgb(rng.randint(0, 65536, size=(5, 6, 3)).astype(np.uint16))
cases["lossy.webp"] = enc(photo_im, "WEBP", quality=80)
cases["lossless.webp"] = enc(photo_im, "WEBP", lossless=True)
cases["lossy_alpha.webp"] = enc(rgba, "WEBP", quality=80)
for o in range(1, 9):
    cases[f"orient{o}.png"] = enc(small, "PNG", exif=exif_with_orientation(o))
cases["orient6.jpg"] = enc(small, "JPEG", quality=95, exif=exif_with_orientation(6))
cases["orient7.webp"] = enc(small, "WEBP", lossless=True, exif=exif_with_orientation(7))
cases["xmp8.png"] = png_with_xmp(small, 8)

lines = []
for name, data in cases.items():
    rel = write_bytes(f"decode/{name}", data)
    im = Image.open(io.BytesIO(data))
    ref = ImageOps.exif_transpose(im).convert("RGB")  # diffusers.utils.load_image
    exp = save(ref, f"decode/{name.rsplit('.', 1)[0]}.{name.rsplit('.', 1)[1]}.expected.png")
    lines.append(f"{rel} {exp}")
    print(f"{name:28s} mode={im.mode:5s} size={im.size} -> {ref.size}", file=sys.stderr)
with open(os.path.join(OUT, "decode_cases.txt"), "w") as f:
    f.write("# encoded expected  (ImageOps.exif_transpose(Image.open(f)).convert('RGB'), Pillow 9.4)\n")
    f.write("\n".join(lines) + "\n")

# ----------------------------------------------------------------------------- 16-bit grey
# Pillow opens a 16-bit grey PNG as mode "I" and convert("RGB") clips to 255; the library
# deliberately keeps the high byte instead, so this file is checked against known values
# (the row below), not against Pillow.
g16 = np.array([[0, 255, 256, 1000, 32768, 65535]], dtype=np.uint16)
save(Image.fromarray(g16), "decode_extra/gray16_0_255_256_1000_32768_65535.png")
