"""``nanocrystal analyze``: calibrate, segment, measure and classify the particles of TEM images.

Writes, per image, ``<stem>_particles.csv``, ``<stem>_labels.tif``, ``<stem>_overlay.png`` and
``<stem>_outcome.json``, and one ``summary.csv`` (see :mod:`napari_nanocrystal.analysis`).
Exit status: 0 all images analysed, 1 some failed (each is reported with its problem),
2 nothing was done (bad options, no images, outputs exist or would replace an input, output
folder not writable, model cannot be loaded).  Every error is one line naming the input.
"""

from __future__ import annotations

import logging
import sys

from ._args import PLANE_HELP, diameter_or_auto, nm_per_px, non_negative_float, plane_index

logger = logging.getLogger(__name__)

HELP = "analyse TEM images: calibration, segmentation, sizes and shapes → CSV, overlay, outcome JSON, summary"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help=HELP,
        description=HELP + ". Calibration: --nm-per-px, else the pixel size stored in the file (TIFF, DM3/DM4), "
        "else the scale bar read by OCR.",
        epilog="Exit status: 0 all analysed, 1 some images failed, 2 nothing done.",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="image files (.tif .tiff .png .jpg .jpeg .bmp .dm3 .dm4) or folders of them"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument(
        "--model",
        default="default",
        metavar="default|fast|FILE",
        help="segmentation model: 'default', a shipped name ('fast': ~2x faster, a little less accurate) or a weight file (default: %(default)s)",
    )
    parser.add_argument(
        "--nm-per-px",
        type=nm_per_px,
        default=None,
        metavar="X",
        help="pixel size in nm for every image (overrides file metadata and scale bars; 0.001–5000 nm/px)",
    )
    parser.add_argument(
        "--diameter-nm",
        type=diameter_or_auto,
        default=None,
        metavar="D|auto",
        help="typical particle diameter: rescale images to the model's training size ('auto': estimated per image by the model)",
    )
    border = parser.add_mutually_exclusive_group()
    border.add_argument(
        "--exclude-border",
        dest="exclude_border",
        action="store_true",
        default=True,
        help="do not measure particles touching the image border (default)",
    )
    border.add_argument("--keep-border", dest="exclude_border", action="store_false", help="measure particles touching the border too")
    parser.add_argument(
        "--min-area-px",
        type=non_negative_float,
        default=15.0,
        metavar="N",
        help="do not measure particles smaller than N pixels (default: %(default)g)",
    )
    parser.add_argument("--plane", type=plane_index, default=None, metavar="K", help=PLANE_HELP)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files (an image that now fails keeps its earlier outputs); inputs are never replaced",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from napari_nanocrystal._progress import drive
    from napari_nanocrystal.analysis import AnalysisError, iter_analyze_paths

    steps = iter_analyze_paths(
        args.paths,
        args.out,
        model=args.model,
        nm_per_px=args.nm_per_px,
        diameter_nm=args.diameter_nm,
        exclude_border=args.exclude_border,
        min_area_px=args.min_area_px,
        overwrite=args.overwrite,
        plane=args.plane,
    )
    # drawn on a terminal only (disable=None): logs and pipes get the final report alone
    bar = tqdm(total=100, bar_format="{l_bar}{bar}| {elapsed}<{remaining}", file=sys.stderr, dynamic_ncols=True, disable=None)

    def show(message: str, fraction: float) -> None:
        bar.set_description_str(message[:60])
        bar.update(round(100 * fraction, 1) - bar.n)

    try:
        report = drive(steps, show)
    except (AnalysisError, FileExistsError, FileNotFoundError, ValueError, ImportError, OSError, TimeoutError) as error:
        bar.close()
        print(f"nanocrystal analyze: error: {error}", file=sys.stderr)
        return 2
    bar.close()
    for record in report.failed:
        print(f"FAILED {record.error}", file=sys.stderr)
    n_ok, n = len(report.succeeded), len(report.records)
    print(f"analysed {n_ok} of {n} input(s); summary: {report.summary_path}")
    return 0 if report.ok else 1
