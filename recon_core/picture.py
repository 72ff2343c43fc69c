"""User pictures: read any image Pillow reads, find the object's mask, frame it like the
training renders.

The mask comes from, in order: a mask file given by the user, the alpha channel when it
has transparent pixels, or an estimate of a plain or studio background. The estimate fits a
smooth background (a plane per colour channel, so vignettes and studio gradients are
followed) to the image's border, thresholds each pixel's distance to it (hysteresis: seeds
above Otsu's level grow through pixels above the border's noise), removes specks and
fills small holes. No segmentation network is downloaded.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recon_core.imaging import OBJECT_FILL, crop_resize, square_crop_box, window_bounds

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
    """"file", "alpha" or "background"."""

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


def _open(path: Path):
    """Open, orient (EXIF) and decode an image; every failure is a one-line PictureError."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    with warnings.catch_warnings():
        # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that: refuse both.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
            image.load()
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
        return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block: keep the stored orientation
        return image


def _to_rgba(image) -> tuple[np.ndarray, bool]:
    """Any mode -> (H, W, 4) uint8 and whether the picture carries transparency."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16-bit or float grey
        grey = np.asarray(image, dtype=np.float64)
        top = 65535.0 if grey.max(initial=0) > 255 else 255.0
        grey = np.clip(grey / top * 255.0, 0, 255).astype(np.uint8)
        return np.dstack([grey, grey, grey, np.full_like(grey, 255)]), False
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    rgba = np.asarray(image.convert("RGBA"))  # palette, grey, CMYK, YCbCr, LAB...
    return rgba, has_alpha and bool((rgba[..., 3] < 255).any())


MASK_ASPECT_TOLERANCE = 0.01
"""A mask of another size is rescaled to the picture when their aspect ratios differ by at
most this share (rounding of a downscaled mask); otherwise it is refused."""


def read_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """A mask file (white or opaque = object) for a picture of ``shape`` (H, W): one of
    another size but the same shape is rescaled, with a warning; one of another shape is
    refused (stretched, it would mark the wrong pixels)."""
    from PIL import Image

    path = Path(path)
    image = _open(path)
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
    holes = ndimage.binary_fill_holes(mask) & ~mask
    labels, count = ndimage.label(holes)
    if count:  # fill holes smaller than 0.5% of the picture (specular spots, not gaps)
        sizes = ndimage.sum(holes, labels, index=np.arange(1, count + 1))
        mask |= np.isin(labels, 1 + np.flatnonzero(sizes < 0.005 * h * w))
    if step > 1:
        mask = np.repeat(np.repeat(mask, step, axis=0), step, axis=1)[:height, :width]
    return mask


def read_picture(path: str | Path, mask_path: str | Path | None = None) -> Picture:
    """Read a picture and find the object's mask. Raises PictureError (one line, naming the
    file) on unreadable input or when no object is found."""
    path = Path(path)
    rgba, has_alpha = _to_rgba(_open(path))
    rgb = np.ascontiguousarray(rgba[..., :3])
    if mask_path is not None:
        mask, source = read_mask(mask_path, rgb.shape[:2]), "file"
    elif has_alpha:
        mask, source = rgba[..., 3] > 127, "alpha"
    else:
        mask, source = estimate_mask(rgb), "background"
    if not mask.any():
        what = {"alpha": "the alpha channel is empty", "file": "the mask is empty"}.get(
            source, "no object stands out from the background (give --mask or a transparent PNG)"
        )
        raise PictureError(f"{path}: {what}")
    return Picture(path, rgb, mask, source)


def save_mask(mask: np.ndarray, path: str | Path) -> Path:
    """Write a mask as a black and white PNG, atomically."""
    from PIL import Image

    from recon_core.files import atomic_write_bytes

    image = Image.fromarray(mask.astype(np.uint8) * 255)
    atomic_write_bytes(path, lambda handle: image.save(handle, format="PNG"))
    return Path(path)
