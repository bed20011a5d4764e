"""Draw sample document pages for the demo: a page image (text, a table, a process diagram) and a 3-page PDF.

Generated rather than committed, so the repository holds no binary files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1240, 1754  # A4 at 150 dpi


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def draw_page(title: str, body: str, *, rows: list[tuple[str, str]], steps: list[str]) -> Image.Image:
    page = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(page)
    draw.text((100, 90), title, fill="black", font=_font(56))
    y = 200
    for line in body.splitlines():
        draw.text((100, y), line, fill="#222222", font=_font(28))
        y += 42
    y += 40
    draw.text((100, y), "Prices", fill="black", font=_font(36))
    y += 60
    for i, (item, price) in enumerate([("Item", "Price"), *rows]):
        fill = "#dde6f5" if i == 0 else "white"
        draw.rectangle((100, y, 700, y + 56), fill=fill, outline="black", width=2)
        draw.line((450, y, 450, y + 56), fill="black", width=2)
        draw.text((120, y + 12), item, fill="black", font=_font(28))
        draw.text((470, y + 12), price, fill="black", font=_font(28))
        y += 56
    y += 80
    draw.text((100, y), "Process flow", fill="black", font=_font(36))
    y += 70
    x = 100
    for i, step in enumerate(steps):
        draw.rounded_rectangle((x, y, x + 220, y + 110), radius=18, fill="#f5e6cc", outline="black", width=3)
        draw.text((x + 24, y + 38), step, fill="black", font=_font(30))
        if i < len(steps) - 1:
            draw.line((x + 220, y + 55, x + 300, y + 55), fill="black", width=4)
            draw.polygon([(x + 300, y + 55), (x + 282, y + 44), (x + 282, y + 66)], fill="black")
        x += 300
    return page


def numbered_page(n: int) -> Image.Image:
    """Page ``n`` of an endless report: every number gives different pixels (benchmarks use them as distinct pages)."""
    return draw_page(
        f"Report section {n}", f"Quarter {n % 4 + 1} figures for region {n}.\nAll values in thousands.",
        rows=[(f"Item {n}", f"${n * 3}.00"), ("Shipping", f"${n % 7}.50")], steps=["Plan", f"Step {n}", "Ship"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/samples"))
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    first = draw_page(
        "Quarterly ingestion report",
        "Documents flow from the upload bucket through rendering and the vision model\n"
        "into the vector store. Throughput doubled after batching was enabled.",
        rows=[("Rendering", "$0.10"), ("Transcription", "$1.20"), ("Indexing", "$0.05")],
        steps=["Upload", "Render", "Describe", "Index"],
    )
    first.save(out / "page.png")
    pages = [
        first,
        draw_page("Architecture", "The endpoint runs in a private VPC.\nIt scales on requests per minute.",
                  rows=[("c6i.2xlarge", "$0.41/h")], steps=["Client", "Endpoint", "Model"]),
        draw_page("Next steps", "Add a cache for repeated pages.", rows=[], steps=["Measure", "Tune"]),
    ]
    pages[0].save(out / "report.pdf", save_all=True, append_images=pages[1:], resolution=150.0)
    print(f"wrote {out / 'page.png'} and {out / 'report.pdf'} (3 pages)")


if __name__ == "__main__":
    main()
