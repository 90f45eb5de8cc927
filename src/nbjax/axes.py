"""The axis names of nbjax's array annotations: the one vocabulary of its jaxtyping shape strings.

Every ``Float[Array, "..."]`` (``Int``, ``Bool``, ``Shaped``) annotation in nbjax spells its axes
with the names below, and a name means the same axis wherever it appears (jaxtyping binds a name
once per call, so ``T`` in two arguments of one function is checked to be the same length).
The strings in annotations stay literal (jaxtyping parses them); this module is where they are
defined, and ``AXES`` lists them for the test that every annotation keeps to them
(tests/test_shapes.py).

=================  ====================================================  ===========================
name               axis                                                  length
=================  ====================================================  ===========================
``T``              pixels of a tile (consecutive ROI pixels, C order)    ``tile``, kernel.default_tile
``L``              sensor layers (``-detector_thicksteps``)              ``detector.layers``
``Q``              sub-pixels of a pixel, slow sub-pixel outer            ``oversample**2``
``S``              sources (divergence x dispersion points, or the       ``beam.wavelengths.shape[0]``
                   rows of a source file)
``K``              crystal orientations: phi steps x mosaic domains,     ``P * M``
                   phi outer, mosaic domain inner
``P``              phi steps (``-phisteps``)                             ``crystal.phi.shape[0]``
``M``              mosaic domains (``-mosaic_dom``)                      ``crystal.mosaic_umats.shape[0]``
``Nh Nk Nl``       the structure-factor table's h, k and l axes          ``h_range + 1``, ...
                   (C's padded grid ``F[h - h_min, k - k_min, l - l_min]``)
``spixels``        image rows (slow axis)                                ``detector.spixels``
``fpixels``        image columns (fast axis)                             ``detector.fpixels``
``Sos``            sub-pixel centres along the slow axis                 ``spixels * oversample``
``Fos``            sub-pixel centres along the fast axis                 ``fpixels * oversample``
``B``              images of a batch (``kernel.stack_experiments``)      number of Experiments
``n``              free values of a fit (the flat theta)                 sum of the parameters' sizes
``dense``          free values with dense Jacobian columns (all but      ``n`` - background planes
                   the background planes of a shoebox fit)
``tiles``          tiles of a fit image's pixel list (tiles x ``T``)     pixels / tile, rounded up
``tangents``       forward-mode tangents of a fit's experiment values    one per global value
``roi``            the rendered pixels, flat in C order                  ``window.n``
``context``        a model's context for its tile stages                 model-defined
``*batch``         any leading axes of an elementwise function (the      any
                   physics functions take whatever the caller stacks)
=================  ====================================================  ===========================

Fixed sizes and markers (jaxtyping's own syntax, listed for completeness):

* ``3``: the components x, y, z of a lab-frame vector (m or 1/m), the rows a, b, c of a cell
  (``"3 3"``), or the Miller indices h, k, l of a sample (``"T L Q S K 3"``);
* ``""``: a scalar (0-d array);
* ``#`` before a name: that axis may also be 1 (NumPy broadcasting), e.g. the cached C
  polarization ``"T #L #Q #S"`` holds one value per pixel as (T, 1, 1, 1); ``#*batch``: any of
  the leading axes may be 1 or missing, and ``*batch`` in the result is their broadcast shape;
* a leading space (``" T"``) keeps a one-axis string from reading as a Python name to linters
  (jaxtyping ignores it; ruff's F722 is switched off for shape strings).

The kernel's own loop order, outermost first, is T, L, Q, S, K (phi, then mosaic domain): the
samples of a tile are ``"T L Q S K"`` arrays (``nbjax.samples``).
"""

T = "T"
L = "L"
Q = "Q"
S = "S"
K = "K"
P = "P"
M = "M"
NH, NK, NL = "Nh", "Nk", "Nl"
SPIXELS, FPIXELS = "spixels", "fpixels"
SOS, FOS = "Sos", "Fos"
B = "B"
N = "n"
TILES = "tiles"
DENSE = "dense"
TANGENTS = "tangents"
ROI = "roi"
CONTEXT = "context"
BATCH = "batch"

# name -> what the axis is (the table above, one line each)
AXES: dict[str, str] = {
    T: "pixels of a tile",
    L: "sensor layers",
    Q: "sub-pixels of a pixel (oversample^2), slow sub-pixel outer",
    S: "sources",
    K: "crystal orientations, phi outer x mosaic domain inner",
    P: "phi steps",
    M: "mosaic domains",
    NH: "structure-factor table, h axis",
    NK: "structure-factor table, k axis",
    NL: "structure-factor table, l axis",
    SPIXELS: "image rows (slow)",
    FPIXELS: "image columns (fast)",
    SOS: "sub-pixel centres along the slow axis (spixels * oversample)",
    FOS: "sub-pixel centres along the fast axis (fpixels * oversample)",
    B: "images of a batch",
    N: "free values of a fit (flat theta)",
    TILES: "tiles of an image's pixel list (a fit's packed data: tiles x T pixels)",
    DENSE: "the free values whose Jacobian columns are dense (all but a shoebox fit's background planes)",
    TANGENTS: "forward-mode tangents of a fit's experiment parameters",
    ROI: "the rendered pixels, flat in C order",
    CONTEXT: "a model's context array for its tile stages",
    BATCH: "any leading axes of an elementwise function",
}
