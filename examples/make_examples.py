"""Draw the example photos in examples/ (run once; needs `make fonts`).

Every pixel comes from this script: procedural skies, walls and textures, with text set in
free fonts from Debian packages (DejaVu: Bitstream Vera licence; Liberation: SIL OFL; Roboto:
Apache 2.0), then warped in perspective and given camera-like blur, noise and JPEG. No
third-party photo is used, so the images can be redistributed with the project.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
FONTS = Path("/usr/share/fonts/truetype")
W, H = 1280, 720


def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(next(FONTS.rglob(name))), size)


def gradient(top, bottom, w=W, h=H) -> np.ndarray:
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    return (np.array(top, np.float32) * (1 - t) + np.array(bottom, np.float32) * t).repeat(w, 1)


def texture(rng, img: np.ndarray, amount: float) -> np.ndarray:
    noise = cv2.GaussianBlur(rng.normal(0, amount, img.shape[:2]).astype(np.float32), (0, 0), 3)
    return img + noise[..., None]


def paste_warped(canvas: np.ndarray, layer: Image.Image, corners) -> None:
    """Warp an RGBA layer onto the canvas so its corners land on `corners` (TL, TR, BR, BL)."""
    rgba = np.asarray(layer, np.float32)
    h, w = rgba.shape[:2]
    M = cv2.getPerspectiveTransform(np.float32([[0, 0], [w, 0], [w, h], [0, h]]), np.float32(corners))
    warped = cv2.warpPerspective(rgba, M, (canvas.shape[1], canvas.shape[0]), flags=cv2.INTER_LINEAR)
    a = warped[..., 3:] / 255.0
    canvas[:] = canvas * (1 - a) + warped[..., :3] * a


def sign(size, bg, lines, border=None, radius=18) -> Image.Image:
    """A sign: rounded panel with lines of (text, font, colour, (x, y))."""
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([0, 0, size[0] - 1, size[1] - 1], radius, fill=bg, outline=border, width=8 if border else 0)
    for text, f, color, xy in lines:
        d.text(xy, text, font=f, fill=color, anchor="mm")
    return img


def camera(rng, canvas: np.ndarray) -> np.ndarray:
    img = np.clip(canvas + rng.normal(0, 3, canvas.shape), 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(img, (3, 3), 0.6)


def street(rng) -> np.ndarray:
    c = gradient((235, 190, 140), (120, 150, 200))[::-1].copy()  # evening sky
    c[560:] = texture(rng, np.full((160, W, 3), 95, np.float32), 6)  # road
    cv2.rectangle(c, (610, 120), (634, 720), (70, 72, 75), -1)  # pole
    paste_warped(c, sign((900, 200), (20, 110, 60), [("Main Street", font("DejaVuSans-Bold.ttf", 120), "white", (450, 100))],
                         border=(240, 240, 240)), [(250, 150), (980, 190), (975, 330), (255, 300)])
    paste_warped(c, sign((420, 420), (25, 70, 160), [("P", font("LiberationSans-Bold.ttf", 240), "white", (210, 150)),
                                                      ("24/7", font("LiberationSans-Bold.ttf", 110), "white", (210, 340))],
                         border=(245, 245, 245)), [(660, 380), (860, 370), (865, 560), (662, 575)])
    return camera(rng, c)


def shop(rng) -> np.ndarray:
    c = texture(rng, np.full((H, W, 3), (150, 70, 55), np.float32), 10)  # brick wall
    for y in range(0, H, 36):
        cv2.line(c, (0, y), (W, y), (200, 190, 180), 3)
        for x in range((y // 36 % 2) * 45, W, 90):
            cv2.line(c, (x, y), (x, y + 36), (200, 190, 180), 3)
    paste_warped(c, sign((1000, 220), (250, 244, 230), [("BAKERY & CAFE", font("DejaVuSerif-Bold.ttf", 100), (90, 40, 20), (500, 110))],
                         border=(90, 40, 20)), [(140, 60), (1140, 80), (1135, 290), (145, 280)])
    cv2.rectangle(c, (180, 340), (700, 720), (40, 45, 50), -1)  # window
    paste_warped(c, sign((300, 120), (200, 30, 30), [("OPEN", font("LiberationSans-Bold.ttf", 96), "white", (150, 62))]),
                 [(300, 400), (560, 395), (562, 500), (302, 505)])
    board = sign((380, 300), (35, 40, 38), [("Coffee $2.50", font("Roboto-Bold.ttf", 54), "white", (190, 90)),
                                            ("Croissant $1.80", font("Roboto-Bold.ttf", 46), (250, 220, 120), (190, 200))],
                 border=(120, 85, 50))
    paste_warped(c, board, [(800, 380), (1150, 400), (1140, 690), (795, 680)])
    return camera(rng, c)


def product(rng) -> np.ndarray:
    c = texture(rng, gradient((210, 200, 185), (160, 150, 140)), 4)  # table and wall
    label = sign((620, 520), (255, 255, 255), [
        ("ORGANIC", font("LiberationSans-Bold.ttf", 110), (30, 120, 60), (310, 110)),
        ("Whole Milk", font("DejaVuSerif-Bold.ttf", 92), (20, 40, 110), (310, 270)),
        ("1 LITRE  3.5% fat", font("DejaVuSans.ttf", 52), (60, 60, 60), (310, 420)),
    ], radius=30)
    paste_warped(c, label, [(380, 130), (900, 160), (890, 620), (370, 600)])
    return camera(rng, c)


def main() -> None:
    rng = np.random.default_rng(0)
    for name, draw in (("street-sign", street), ("shop-front", shop), ("milk-carton", product)):
        img = draw(rng)
        cv2.imwrite(str(HERE / f"{name}.jpg"), img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        print(f"wrote examples/{name}.jpg")


if __name__ == "__main__":
    main()
