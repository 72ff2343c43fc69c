"""User pictures: read any image Pillow reads, find the object's mask, frame it like the
training renders.

The mask comes from a mask file given by the user, else as ``background`` says:

- ``auto`` (the default): the alpha channel when it has transparent pixels, else the
  bundled salient-object network (`recon_core.segmentation`), else (no network) the plain
  background estimate;
- ``alpha``, ``segment`` or ``plain``: that source only.

The plain estimate fits a smooth background (a plane per colour channel, so vignettes and
studio gradients are followed) to the image's border, thresholds each pixel's distance to
it (hysteresis: seeds above Otsu's level grow through pixels above the border's noise),
removes specks and fills small holes. The network's mask keeps the largest object when a
photo shows several. A mask that cannot be right (a speck, the whole frame, most of the
border) is reported in ``Picture.warnings`` and logged, never used silently. Nothing is
downloaded.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recon_core.imaging import OBJECT_FILL, crop_resize, square_crop_box, window_bounds
from recon_core.request import BACKGROUNDS

log = logging.getLogger("recon3d")

__all__ = ["PictureError", "Picture", "read_picture", "read_mask", "estimate_mask", "save_mask"]


class PictureError(ValueError):
    """A picture or mask that cannot be used; the message names the file."""


@dataclass
class Picture:
    """An RGB picture (H, W, 3) uint8 with the object's mask (H, W) bool."""

    path: Path
    rgb: np.ndarray
    mask: np.ndarray
    mask_source: str
    """"file", "alpha", "segment" or "plain"."""
    warnings: list[str] = field(default_factory=list)
    """One line each: why the mask may be wrong (said to the user, never silent)."""

    def rgba(self) -> np.ndarray:
        alpha = self.mask.astype(np.uint8) * 255
        return np.concatenate([self.rgb, alpha[..., None]], axis=-1)

    def framed(self, size: int, fill: float = OBJECT_FILL) -> np.ndarray:
        """(size, size, 4) uint8: the object centred on a transparent background, its longer
        side ``fill`` of the image, as the training renders frame it. Only the framed window
        of the picture is copied (a phone photo is tens of megapixels)."""
        x0, y0, side = box = square_crop_box(self.mask, fill)
        top, bottom, left, right = window_bounds(box, *self.mask.shape)
        alpha = self.mask[top:bottom, left:right, None].astype(np.uint8) * 255
        window = np.concatenate([self.rgb[top:bottom, left:right], alpha], axis=-1)
        return crop_resize(window, (x0 - left, y0 - top, side), size)


MAX_SIDE = 2048
"""Pictures are worked on at most this many pixels along their longer side. The networks
read the object at 128 to 224 pixels and the colours land on a base mesh's vertices, while
each step over a phone photo's 12 to 50 megapixels would cost a large share of a second.
A JPEG is decoded straight at a reduced scale (1/2, 1/4 or 1/8) where that keeps at least
half this side."""


def _open(path: Path, max_side: int | None = None):
    """Open, orient (EXIF) and decode an image, at most ``max_side`` pixels along its longer
    side when given, and its size as stored (width, height, EXIF-oriented); every failure is
    a one-line PictureError."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    with warnings.catch_warnings():
        # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that: refuse both.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
            stored = image.size
            if max_side and max(stored) > max_side:
                half = max_side / 2 / max(stored)
                image.draft(None, (int(np.ceil(stored[0] * half)), int(np.ceil(stored[1] * half))))
            image.load()
            if max_side and max(image.size) > max_side:
                image = _shrunk_to(image, max_side)
        except FileNotFoundError:
            raise PictureError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise PictureError(f"{path}: is a folder, not an image") from None
        except UnidentifiedImageError:
            raise PictureError(f"{path}: not an image Pillow can read") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise PictureError(
                f"{path}: refused as a possible decompression bomb "
                f"(more than {Image.MAX_IMAGE_PIXELS} pixels)"
            ) from exc
        except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise PictureError(f"{path}: unreadable image ({first})") from None
    try:
        oriented = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block: keep the stored orientation
        oriented = image
    if oriented.size != image.size:  # turned a quarter
        stored = stored[::-1]
    return oriented, stored


def _shrunk_to(image, max_side: int):
    """``image`` resampled so that its longer side is ``max_side`` (a palette or odd mode is
    first made RGB(A), which is what every caller turns it into anyway)."""
    from PIL import Image

    if image.mode not in ("1", "L", "LA", "RGB", "RGBA", "I", "F"):
        keep_alpha = "A" in image.getbands() or "transparency" in image.info
        image = image.convert("RGBA" if keep_alpha else "RGB")
    scale = max_side / max(image.size)
    size = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _to_arrays(image) -> tuple[np.ndarray, np.ndarray | None]:
    """Any mode -> its colours (H, W, 3) uint8 and, when the picture carries transparency,
    its alpha (H, W) uint8 (else None). An RGB picture without transparency (every JPEG) is
    read as it is, without passing through four channels."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16-bit or float grey
        grey = np.asarray(image, dtype=np.float64)
        top = 65535.0 if grey.max(initial=0) > 255 else 255.0
        grey = np.clip(grey / top * 255.0, 0, 255).astype(np.uint8)
        return np.dstack([grey, grey, grey]), None
    if mode == "RGB" and "transparency" not in image.info:
        return np.asarray(image), None
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    rgba = np.asarray(image.convert("RGBA"))  # palette, grey, CMYK, YCbCr, LAB...
    alpha = rgba[..., 3] if has_alpha and bool((rgba[..., 3] < 255).any()) else None
    return np.ascontiguousarray(rgba[..., :3]), alpha


MASK_ASPECT_TOLERANCE = 0.01
"""A mask of another size is rescaled to the picture when their aspect ratios differ by at
most this share (rounding of a downscaled mask); otherwise it is refused."""


def read_mask(
    path: str | Path, shape: tuple[int, int], stored: tuple[int, int] | None = None
) -> np.ndarray:
    """A mask file (white or opaque = object) for a picture worked on at ``shape`` (H, W)
    and stored at ``stored`` (W, H; default: the same): one of another size but the same
    shape is rescaled, with a warning unless it has the stored picture's size; one of
    another shape is refused (stretched, it would mark the wrong pixels)."""
    from PIL import Image

    path = Path(path)
    image, _ = _open(path)
    if "A" in image.getbands() and image.getextrema()[-1][0] < 255:
        grey = image.getchannel("A")
    else:
        grey = image.convert("L")
    width, height = grey.size
    if (width, height) != (shape[1], shape[0]):
        aspect, wanted = width / height, shape[1] / shape[0]
        if abs(aspect - wanted) > MASK_ASPECT_TOLERANCE * wanted:
            raise PictureError(
                f"{path}: the mask is {width}x{height} and the picture {shape[1]}x{shape[0]}, "
                "another shape; give a mask of the picture's size"
            )
        if (width, height) != tuple(stored or (shape[1], shape[0])):
            log.warning(
                "%s: the mask is %dx%d; rescaled to the picture's %dx%d",
                path,
                width,
                height,
                shape[1],
                shape[0],
            )
        grey = grey.resize((shape[1], shape[0]), Image.Resampling.NEAREST)
    mask = np.asarray(grey) > 127
    if not mask.any():
        raise PictureError(f"{path}: the mask is empty (no white or opaque pixel)")
    return mask


def _fill_small_holes(mask: np.ndarray, share: float = 0.005) -> np.ndarray:
    """The mask with its holes under ``share`` of the picture filled (specular spots and
    reflections, not gaps such as a chair back's opening). A hole is a part of the
    background (4-connected, as `scipy.ndimage.binary_fill_holes` floods it) that does not
    touch the picture's edge: one labelling pass, not a flood by repeated dilation."""
    from scipy import ndimage

    labels, count = ndimage.label(~mask)
    if not count:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    small = sizes < share * mask.size
    small[0] = False  # the mask itself
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    small[edge] = False  # open to the edge: background, not a hole
    return mask | small[labels]


def _border(height: int, width: int) -> np.ndarray:
    ring = max(2, round(0.02 * min(height, width)))
    border = np.zeros((height, width), dtype=bool)
    border[:ring], border[-ring:], border[:, :ring], border[:, -ring:] = True, True, True, True
    return border


def estimate_mask(rgb: np.ndarray) -> np.ndarray:
    """Object mask (H, W) bool of a picture of one object on a plain or studio background
    (see the module's notes). May be empty when nothing stands out."""
    from scipy import ndimage
    from skimage.filters import apply_hysteresis_threshold, threshold_otsu

    height, width = rgb.shape[:2]
    step = max(1, int(np.ceil(max(height, width) / 400)))  # work at about 400 px
    small = rgb[::step, ::step].astype(np.float64) / 255.0
    h, w = small.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    design = np.stack([np.ones(h * w), xs.ravel() / w, ys.ravel() / h], axis=1)
    border = _border(h, w).ravel()
    colours = small.reshape(-1, 3)
    keep = border.copy()
    for _ in range(3):  # fit the background plane, drop border pixels the object touches
        coef, *_ = np.linalg.lstsq(design[keep], colours[keep], rcond=None)
        residual = np.linalg.norm(colours - design @ coef, axis=1)
        cut = np.quantile(residual[border], 0.8) * 2.0 + 1e-3
        keep = border & (residual <= cut)
    noise = np.median(residual[keep]) + 1e-3
    distance = residual.reshape(h, w)
    try:
        otsu = threshold_otsu(distance)
    except ValueError:  # a constant image
        return np.zeros((height, width), dtype=bool)
    low = max(4.0 * noise, 0.03)
    mask = apply_hysteresis_threshold(distance, low, max(otsu, low))
    mask = ndimage.binary_opening(mask, iterations=1)
    labels, count = ndimage.label(mask)
    if count:
        sizes = ndimage.sum(mask, labels, index=np.arange(1, count + 1))
        mask = np.isin(labels, 1 + np.flatnonzero(sizes >= 0.05 * sizes.max()))
    mask = _fill_small_holes(mask)
    if step > 1:
        mask = np.repeat(np.repeat(mask, step, axis=0), step, axis=1)[:height, :width]
    return mask


SMALL_MASK = 0.01
"""A mask under this share of the picture is a speck, not an object."""
FULL_MASK = 0.98
"""A mask over this share of the picture took the background with it."""
BORDER_SHARE = 0.5
"""A mask on more than this share of the picture's border ring has the background in it
(or the object is cut off)."""
SEGMENT_WORKING_SIDE = 1024
"""The network's mask is cleaned up (largest object, holes) at most this many pixels along
the picture's longer side, then scaled to the picture: the network reads 320."""
SECOND_OBJECT = 0.1
"""Another connected part of the network's mask at least this share of the largest one's
size is another object: the largest is kept, and the line says so."""


def _largest_object(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The largest connected part of a mask, and how many parts count as objects."""
    from scipy import ndimage

    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask, count
    sizes = ndimage.sum(mask, labels, index=np.arange(1, count + 1))
    objects = int((sizes >= SECOND_OBJECT * sizes.max()).sum())
    return labels == 1 + int(sizes.argmax()), objects


def segment_mask(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """The salient object's mask (H, W) bool from the bundled network, the largest object
    only with its small holes filled, and how many objects the network saw."""
    from PIL import Image

    from recon_core.segmentation import segment

    mask, objects = _largest_object(segment(rgb, SEGMENT_WORKING_SIDE) > 0.5)
    mask = _fill_small_holes(mask)
    height, width = rgb.shape[:2]
    if mask.shape != (height, width):  # a large photo: its mask at full size
        image = Image.fromarray(mask.astype(np.uint8) * 255)
        mask = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR)) > 127
    return mask, objects


def mask_warnings(mask: np.ndarray) -> list[str]:
    """Why a mask cannot be right, one line each (none for a plausible mask)."""
    share = float(mask.mean())
    out = []
    if share < SMALL_MASK:
        out.append(f"the mask covers only {100 * share:.1f}% of the picture")
    if share > FULL_MASK:
        out.append("the mask covers the whole picture: no background was told apart")
    ring = _border(*mask.shape)
    on_border = float(mask[ring].mean())
    if share <= FULL_MASK and on_border > BORDER_SHARE:
        out.append(
            f"the mask runs along {100 * on_border:.0f}% of the picture's border: background "
            "taken for the object, or the object cut off"
        )
    return out


def read_picture(
    path: str | Path, mask_path: str | Path | None = None, background: str = "auto"
) -> Picture:
    """Read a picture and find the object's mask (see the module's notes for
    ``background``). Raises PictureError (one line, naming the file) on unreadable input or
    when no object is found; a doubtful mask is logged and kept in ``Picture.warnings``."""
    if background not in BACKGROUNDS:
        raise PictureError(f"background {background!r}: use one of {', '.join(BACKGROUNDS)}")
    path = Path(path)
    image, stored = _open(path, MAX_SIDE)
    rgb, alpha = _to_arrays(image)
    notes = []
    if mask_path is not None:
        mask, source = read_mask(mask_path, rgb.shape[:2], stored), "file"
    elif background == "alpha" or (background == "auto" and alpha is not None):
        if alpha is None:
            raise PictureError(
                f"{path}: has no transparent pixels; choose another background source"
            )
        mask, source = alpha > 127, "alpha"
    elif background == "plain":
        mask, source = estimate_mask(rgb), "plain"
    else:
        from recon_core.segmentation import SegmentationError

        try:
            mask, objects = segment_mask(rgb)
            source = "segment"
            if objects > 1:
                notes.append(f"{objects} objects stand out; the largest is kept")
        except SegmentationError as exc:
            if background == "segment":
                raise PictureError(f"{path}: {exc}") from None
            log.warning("warning: %s; the plain background estimate is used", exc)
            mask, source = estimate_mask(rgb), "plain"
    if not mask.any():
        what = {
            "alpha": "the alpha channel is empty",
            "file": "the mask is empty",
            "segment": "no object stands out (give --mask, or try --background plain)",
        }.get(source, "no object stands out from the background (give --mask or a transparent PNG)")
        raise PictureError(f"{path}: {what}")
    warnings = notes + mask_warnings(mask)
    for line in warnings:
        log.warning("warning: %s: %s", path, line)
    return Picture(path, rgb, mask, source, warnings)


def save_mask(mask: np.ndarray, path: str | Path) -> Path:
    """Write a mask as a black and white PNG, atomically."""
    from PIL import Image

    from recon_core.files import atomic_write_bytes

    image = Image.fromarray(mask.astype(np.uint8) * 255)
    atomic_write_bytes(path, lambda handle: image.save(handle, format="PNG"))
    return Path(path)
