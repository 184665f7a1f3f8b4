#!/usr/bin/env python3
"""Renders one point field of a 2D doppel VTU file as an SVG picture (stdlib only).

Usage: scripts/vtu_to_svg.py FILE.vtu FIELD OUT.svg [--title TEXT]
Each cell is filled with the colour of the field averaged over its vertices.
"""
import re
import sys
import xml.etree.ElementTree as ET


def array(piece, name):
    for da in piece.iter("DataArray"):
        if da.get("Name") == name:
            return [float(v) for v in da.text.split()], int(da.get("NumberOfComponents", "1"))
    raise SystemExit(f"no array {name!r} in the VTU file")


def colour(t):
    # A blue-white-red ramp.
    stops = [(0.0, (59, 76, 192)), (0.5, (221, 221, 221)), (1.0, (180, 4, 38))]
    for (t0, c0), (t1, c1) in zip(stops, stops[1:]):
        if t <= t1:
            w = (t - t0) / (t1 - t0)
            return "#%02x%02x%02x" % tuple(int(a + w * (b - a)) for a, b in zip(c0, c1))
    return "#%02x%02x%02x" % stops[-1][1]


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    vtu, field, out = sys.argv[1:4]
    title = sys.argv[sys.argv.index("--title") + 1] if "--title" in sys.argv else field
    piece = ET.parse(vtu).getroot().find("UnstructuredGrid/Piece")
    pts = [float(v) for v in piece.find("Points/DataArray").text.split()]
    conn = [int(v) for v in piece.find("Cells/DataArray[@Name='connectivity']").text.split()]
    offsets = [int(v) for v in piece.find("Cells/DataArray[@Name='offsets']").text.split()]
    values, comps = array(piece, field)
    xs, ys = pts[0::3], pts[1::3]
    lo, hi = min(values[::comps]), max(values[::comps])
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    width = 900
    scale = (width - 40) / (x1 - x0)
    height = int((y1 - y0) * scale) + 90
    def px(i):
        return 20 + (xs[i] - x0) * scale, height - 70 - (ys[i] - y0) * scale
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="14">',
             f'<rect width="100%" height="100%" fill="white"/>',
             f'<text x="20" y="20">{title}</text>']
    start = 0
    for end in offsets:
        cell = conn[start:end]
        start = end
        verts = cell[:3]
        v = sum(values[i * comps] for i in verts) / 3
        c = colour((v - lo) / (hi - lo) if hi > lo else 0.5)
        poly = " ".join("%.1f,%.1f" % px(i) for i in verts)
        parts.append(f'<polygon points="{poly}" fill="{c}" stroke="{c}" stroke-width="0.5"/>')
    for k in range(101):
        parts.append(f'<rect x="{20 + k * 3}" y="{height - 40}" width="3" height="14" fill="{colour(k / 100)}"/>')
    parts.append(f'<text x="20" y="{height - 8}">{lo:.4g}</text>')
    parts.append(f'<text x="290" y="{height - 8}">{hi:.4g}</text>')
    parts.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(parts))


if __name__ == "__main__":
    main()
