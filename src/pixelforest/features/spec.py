"""Named multiscale per-pixel features (ilastik's set), exact block by block.

A :class:`FeatureSpec` says *which* features to compute: a tuple of
feature families and a tuple of scales (Gaussian sigmas), optionally in
physical units through a per-axis pixel ``spacing``.  :func:`compute_features`
turns an image into a channel-last ``(..., F)`` float32 stack whose columns
are named by :meth:`FeatureSpec.feature_names`, for example
``gaussian(sigma=2)[ch0]``.

Families
--------
==============  ==============================================================
``intensity``   the (normalized) pixel value itself; no scale
``gaussian``    Gaussian smoothing
``dog``         difference of Gaussians, ``G(0.625 sigma) - G(sigma)``
``log``         Laplacian of Gaussian (sum of second derivatives)
``gradient``    Gaussian gradient magnitude
``hessian``     eigenvalues of the Hessian of Gaussian, largest first
``structure``   eigenvalues of the structure tensor (gradient at
                ``sigma / 2``, averaged over ``sigma``; ``structure_scales``
                sets both), largest first
==============  ==============================================================

Every filter is a :func:`scipy.ndimage.gaussian_filter` with
``mode="reflect"`` and ``truncate=4``, so each feature at a pixel depends
only on the pixels within a known radius.  Two ways to compute them
(``precision``): ``"exact"``, scipy's bits (float64 accumulation, the
compiled kernels of :mod:`pixelforest.features.gaussian`), and ``"fast"``,
float32 arithmetic with every derivative order of a scale computed in shared
passes (:mod:`pixelforest.features.fast`), within 1e-3 of the image's range
of the float64 result (about 1e-6 in practice).  A model file records the
spec, so prediction uses the precision the model was trained with.

:meth:`FeatureSpec.halo_for` returns the radius per axis: a block cut with
that margin gives, in its interior, bit for bit the features of the whole
image, on either path (the border of the image is reflected the same way in
both cases).

Column order: for each channel, the ``intensity`` column first (if
requested), then every other family in the order of ``spec.families``, each
at every sigma in order, eigenvalue families contributing one column per
spatial axis.
"""

from __future__ import annotations

import dataclasses
import math
import numbers


from pixelforest.errors import InvalidImageError, InvalidParameterError
from pixelforest.features.gaussian import kernel_radius

__all__ = ["FAMILIES", "PRECISIONS", "PRESETS", "FeatureSpec"]

#: Feature families and a one-line description of each.
FAMILIES = {
    "intensity": "the normalized pixel value itself (no scale)",
    "gaussian": "Gaussian smoothing: local mean brightness at this scale",
    "dog": "difference of Gaussians G(0.625*sigma) - G(sigma): blob/band-pass contrast",
    "log": "Laplacian of Gaussian: bright (negative) or dark (positive) blobs of size ~sigma",
    "gradient": "Gaussian gradient magnitude: edge strength at this scale",
    "hessian": "Hessian-of-Gaussian eigenvalues (largest first): ridges, valleys, blobs",
    "structure": "structure-tensor eigenvalues (gradient at sigma/2, averaged over sigma): "
                 "edges vs corners vs flat areas",
}

#: Families that give one column per spatial axis (eigenvalues).
EIGEN_FAMILIES = ("hessian", "structure")

#: Ratio of the inner to the outer sigma of the difference of Gaussians.
DOG_RATIO = 0.625

#: Ratio of the gradient (inner) sigma to the averaging sigma of the structure tensor.
STRUCTURE_INNER = 0.5

#: Default ``(inner, outer)`` scales of the structure tensor, as multiples of
#: sigma: the gradient at ``inner * sigma``, averaged over ``outer * sigma``.
STRUCTURE_SCALES = (STRUCTURE_INNER, 1.0)

#: ilastik's (vigra's, fastfilters2's) structure tensor: the gradient at
#: sigma, averaged over sigma / 2.
STRUCTURE_SCALES_ILASTIK = (1.0, 0.5)

#: How the filters are computed: ``"exact"`` (scipy's bits) or ``"fast"``
#: (float32, shared passes; within :data:`pixelforest.features.fast.FAST_ERROR_BOUND`
#: of the float64 result relative to the image's range).
PRECISIONS = ("exact", "fast")

#: The precision of a spec made without one: ``"fast"``, chosen by
#: measurement (``benchmarks/quality.py`` and ``benchmarks/transfer.py``
#: give the same mean IoUs on both paths, see ``benchmarks/README.md``).
#: Model files that do not record a precision were written by the exact
#: path and load as exact (:meth:`FeatureSpec.from_dict`).
DEFAULT_PRECISION = "fast"

#: Families of the default spec (and of :meth:`FeatureSpec.for_object_size`).
_DEFAULT_FAMILIES = ("intensity", "gaussian", "dog", "gradient", "log")

#: Scales of the default Gaussian smoothing (small: they keep edges in place).
_FINE_SIGMAS = (0.5, 0.7, 1.0)

#: Scales of the default gradient magnitude (edge strength at the outline).
_EDGE_SIGMAS = (0.7, 1.0)


def _dog_ladder(n):
    """The first ``n`` scales of the difference-of-Gaussians ladder: 1.6, 2.56, 4.096, ...

    Each scale is ``1 / DOG_RATIO`` (1.6) times the one before, starting at
    1.6 px, so the inner Gaussian of each difference, ``DOG_RATIO * sigma``,
    is the outer one of the difference before it (and the first one's is
    the 1 px Gaussian smoothing): the filters compute each Gaussian once.
    The values are made by division, so that ``DOG_RATIO * sigma`` gives
    the previous scale's float exactly (up to 10.5 px; beyond, rounding
    leaves the two a bit apart and each is computed).
    """
    ladder, sigma = [], 1.0
    for _ in range(n):
        sigma = sigma / DOG_RATIO
        ladder.append(sigma)
    return tuple(ladder)


#: Scales of the default difference of Gaussians (context around a pixel
#: without blurring its outline): the first five of :func:`_dog_ladder`,
#: 1.6-10.5 px.  A chain shares its Gaussians: a round ladder such as
#: 1.6, 2.5, 4, 6.4, 10 needs eight Gaussians where this one needs six, for
#: the same scores (``benchmarks/README.md`` gives both).
_CONTEXT_SIGMAS = _dog_ladder(5)

#: Scales of the default Laplacian of Gaussian (the curvature of the
#: intensity at and just inside the outline; chosen with
#: ``benchmarks/transfer.py``, see ``benchmarks/README.md``).
_BLOB_SIGMAS = (0.7, 1.0)

_ALL_FAMILIES = tuple(FAMILIES)


def _fmt(value):
    return f"{value:g}"


def _check_sigmas(sigmas):
    if isinstance(sigmas, numbers.Real):
        sigmas = (sigmas,)
    try:
        sigmas = tuple(float(s) for s in sigmas)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"sigmas must be numbers (or a mapping family -> numbers), got {sigmas!r}."
        ) from None
    if any(not math.isfinite(s) or s <= 0 for s in sigmas):
        raise InvalidParameterError(f"sigmas must be positive finite numbers, got {sigmas}.")
    if len(set(sigmas)) != len(sigmas):
        raise InvalidParameterError(f"sigmas are repeated in {sigmas}; list each once.")
    return sigmas


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """Which per-pixel features to compute: families, scales and pixel size.

    Parameters
    ----------
    families : tuple of str, optional
        Feature families, a subset of :data:`FAMILIES`: ``"intensity"``,
        ``"gaussian"``, ``"dog"``, ``"log"``, ``"gradient"``, ``"hessian"``,
        ``"structure"``.  Default: ``("intensity", "gaussian", "dog",
        "gradient", "log")``.
    sigmas : tuple of float or dict, optional
        Scales (Gaussian standard deviations), in pixels, or in the units of
        ``spacing`` when it is given: one tuple for every family, or a
        mapping ``{family: scales}`` for each family but ``"intensity"``.
        Small scales describe edges, large ones the context around a pixel.
        Default (chosen with ``benchmarks/quality.py`` on scribble-trained
        nuclei, see ``benchmarks/README.md``): Gaussian smoothing at 0.5,
        0.7, 1 px (larger blurs move the predicted outline outwards),
        differences of Gaussians at 1.6-10.5 px (1.6, 2.56, 4.096, 6.5536,
        10.48576: context without blurring the outline; each one's inner
        Gaussian is the one before's outer Gaussian, computed once), the
        gradient magnitude at 0.7 and 1 px (edge strength, which tells a
        nucleus' rim from its interior) and the Laplacian of
        Gaussian at 0.7 and 1 px (the curvature of the intensity, which
        places the outline by the shape of the profile rather than its
        level, so that it transfers better across images).
    spacing : tuple of float or None, optional
        Pixel size per spatial axis (e.g. ``(2.0, 0.5, 0.5)`` for a z-stack
        with 2 um between planes and 0.5 um pixels).  Sigmas are then
        physical and the filters anisotropic; derivatives are taken per unit
        length.  None means isotropic pixels of size 1 (any dimension).
    precision : {"exact", "fast"}, optional
        How the filters are computed (see :data:`PRECISIONS`): ``"exact"``
        gives :func:`scipy.ndimage.gaussian_filter`'s bits, ``"fast"``
        float32 arithmetic several times faster, within 1e-3 of the image's
        range of the float64 filters (1e-6 in practice).  Recorded in model
        files; a file without it is exact.  Default: :data:`DEFAULT_PRECISION`.
    structure_scales : tuple of float, optional
        ``(inner, outer)`` scales of the structure tensor as multiples of
        sigma: the gradient at ``inner * sigma``, averaged over
        ``outer * sigma``.  Default ``(0.5, 1.0)``; ilastik's (vigra's,
        fastfilters2's) convention is ``(1.0, 0.5)``
        (:data:`STRUCTURE_SCALES_ILASTIK`), named in the feature names when
        not the default.

    Attributes
    ----------
    names : list of str
        Column names for a single-channel image with ``len(spacing)`` (or 2)
        spatial axes; see :meth:`feature_names` for other cases.
    halo : tuple of int
        ``halo_for(len(spacing))`` (or ``halo_for(2)`` without spacing).

    See Also
    --------
    compute_features : compute the feature stack of an image.
    FeatureSpec.for_object_size : a spec sized for objects of a given diameter.

    Examples
    --------
    >>> spec = FeatureSpec(families=("intensity", "gaussian", "hessian"), sigmas=(1, 4))
    >>> spec.names
    ['intensity[ch0]', 'gaussian(sigma=1)[ch0]', 'gaussian(sigma=4)[ch0]', \
'hessian(sigma=1, eig=0)[ch0]', 'hessian(sigma=1, eig=1)[ch0]', \
'hessian(sigma=4, eig=0)[ch0]', 'hessian(sigma=4, eig=1)[ch0]']
    >>> spec.halo_for(2)
    (16, 16)
    >>> FeatureSpec(sigmas=(1.0,), spacing=(2.0, 0.5, 0.5)).halo
    (2, 8, 8)
    """

    families: tuple = _DEFAULT_FAMILIES
    sigmas: object = (("gaussian", _FINE_SIGMAS), ("dog", _CONTEXT_SIGMAS),
                      ("gradient", _EDGE_SIGMAS), ("log", _BLOB_SIGMAS))
    spacing: tuple | None = None
    precision: str = DEFAULT_PRECISION
    structure_scales: tuple = STRUCTURE_SCALES

    def __post_init__(self):
        families = self.families
        if isinstance(families, str):
            families = (families,)
        families = tuple(str(f) for f in families)
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise InvalidParameterError(
                f"unknown feature families {unknown}; choose from {list(FAMILIES)}."
            )
        if not families:
            raise InvalidParameterError(
                f"a FeatureSpec needs at least one family; choose from {list(FAMILIES)}.")
        if len(set(families)) != len(families):
            raise InvalidParameterError(
                f"feature families are repeated in {families}; list each once.")
        sigmas = self.sigmas
        if isinstance(sigmas, dict) or (isinstance(sigmas, (tuple, list)) and sigmas
                                        and all(isinstance(x, (tuple, list)) and len(x) == 2
                                                and isinstance(x[0], str) for x in sigmas)):
            pairs = dict(sigmas)
            extra = [f for f in pairs if f not in families or f == "intensity"]
            if extra:
                raise InvalidParameterError(
                    f"sigmas are given for {extra}, which are not scaled families of this "
                    f"spec {families}; give sigmas only for its families other than 'intensity'."
                )
            missing = [f for f in families if f != "intensity" and f not in pairs]
            if missing:
                raise InvalidParameterError(
                    f"no sigmas given for the families {missing}; add them to the sigmas "
                    "mapping, e.g. sigmas={'gaussian': (1, 2)}."
                )
            sigmas = tuple((f, _check_sigmas(pairs[f])) for f in families if f in pairs)
        else:
            sigmas = _check_sigmas(sigmas)
            if not sigmas and set(families) - {"intensity"}:
                raise InvalidParameterError(
                    "give at least one sigma for the families other than 'intensity'.")
        spacing = self.spacing
        if spacing is not None:
            if isinstance(spacing, numbers.Real):
                raise InvalidParameterError(
                    f"spacing must give one pixel size per spatial axis, e.g. (1.0, 1.0), "
                    f"got {spacing!r}."
                )
            spacing = tuple(float(s) for s in spacing)
            if len(spacing) not in (2, 3) or any(not math.isfinite(s) or s <= 0 for s in spacing):
                raise InvalidParameterError(
                    f"spacing must hold 2 or 3 positive pixel sizes (one per spatial axis), "
                    f"got {spacing}."
                )
        precision = self.precision
        if not isinstance(precision, str) or precision not in PRECISIONS:
            raise InvalidParameterError(
                f"precision must be one of {list(PRECISIONS)}, got {precision!r}; 'exact' "
                "gives scipy's bits, 'fast' float32 filters within 1e-3 of them."
            )
        scales = self.structure_scales
        try:
            scales = tuple(float(s) for s in scales)
        except (TypeError, ValueError):
            scales = None
        if (scales is None or len(scales) != 2
                or any(not math.isfinite(s) or s <= 0 for s in scales)):
            raise InvalidParameterError(
                f"structure_scales must be two positive numbers (inner, outer), multiples "
                f"of sigma, e.g. (0.5, 1.0) or ilastik's (1.0, 0.5); got "
                f"{self.structure_scales!r}."
            )
        object.__setattr__(self, "families", families)
        object.__setattr__(self, "sigmas", sigmas)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "precision", precision)
        object.__setattr__(self, "structure_scales", scales)

    def sigmas_for(self, family):
        """Scales of one family (empty for ``"intensity"``).

        Examples
        --------
        >>> FeatureSpec().sigmas_for("gaussian")
        (0.5, 0.7, 1.0)
        """
        if family == "intensity" or family not in self.families:
            return ()
        if self.sigmas and isinstance(self.sigmas[0], tuple):
            return dict(self.sigmas)[family]
        return self.sigmas

    # -- presets -------------------------------------------------------------
    @classmethod
    def for_object_size(cls, diameter_px, *, families=None, spacing=None, precision=None):
        """Return a spec whose scales suit objects about ``diameter_px`` wide.

        Follows the measured default (``benchmarks/quality.py``): the
        intensity, Gaussian smoothing at small scales only (0.5-1 px: they
        keep edges where they are), differences of Gaussians from 1.6 px
        up to about half the diameter (at least 4 px), which see an object
        and its surroundings as a whole without blurring its outline, and
        the gradient magnitude at 0.7 and 1 px (edge strength) and the
        Laplacian of Gaussian at 0.7 and 1 px (the profile's curvature).  With
        ``families`` given, every family uses the full ladder of scales.

        Parameters
        ----------
        diameter_px : float
            Typical object diameter, in pixels (or in ``spacing`` units).
        families : tuple of str, optional
            Families to use, each at every scale (default: the layout above).
        spacing : tuple of float, optional
            Pixel size per axis, see :class:`FeatureSpec`.
        precision : {"exact", "fast"}, optional
            See :class:`FeatureSpec` (default :data:`DEFAULT_PRECISION`).

        Returns
        -------
        spec : FeatureSpec

        Examples
        --------
        >>> FeatureSpec.for_object_size(12).sigmas_for("dog")
        (1.6, 2.56, 4.096)
        >>> FeatureSpec.for_object_size(20) == FeatureSpec()
        True
        >>> FeatureSpec.for_object_size(8, families=("gaussian", "hessian")).sigmas
        (0.5, 0.7, 1.0, 1.6, 2.56, 4.096)
        """
        diameter = float(diameter_px)
        if not math.isfinite(diameter) or diameter <= 0:
            raise InvalidParameterError(
                f"diameter_px must be a positive number, got {diameter_px!r}.")
        top = max(4.0, diameter / 2.0)
        # the scales of the ladder up to (about) ``top``
        large = tuple(s for s in _dog_ladder(9) if s <= top * 1.08)
        small = _FINE_SIGMAS
        precision = DEFAULT_PRECISION if precision is None else precision
        if families is None:
            return cls(families=_DEFAULT_FAMILIES,
                       sigmas={"gaussian": small, "dog": large, "gradient": _EDGE_SIGMAS,
                               "log": _BLOB_SIGMAS},
                       spacing=spacing, precision=precision)
        return cls(families=families, sigmas=small + large, spacing=spacing,
                   precision=precision)

    @classmethod
    def resolve(cls, features):
        """The spec a ``features`` setting means: a spec, a preset name, a dict or None.

        None gives the default ``FeatureSpec()``; a str, :meth:`preset`; a
        dict, :meth:`from_dict`, except that a dict without ``"precision"``
        gets :data:`DEFAULT_PRECISION` (a setting asks for the default; a
        model file's record without it means the exact path it was made
        with).

        Examples
        --------
        >>> FeatureSpec.resolve(None) == FeatureSpec()
        True
        >>> FeatureSpec.resolve({"families": ["gaussian"], "sigmas": [1]}).precision
        'fast'
        """
        if features is None:
            return cls()
        if isinstance(features, cls):
            return features
        if isinstance(features, str):
            return cls.preset(features)
        if isinstance(features, dict):
            return cls.from_dict({"precision": DEFAULT_PRECISION, **features})
        raise InvalidParameterError(
            f"features must be a FeatureSpec, a preset name or None, got "
            f"{type(features).__name__}; e.g. features=FeatureSpec(sigmas=(1, 2, 4))."
        )

    @classmethod
    def preset(cls, name):
        """Return the named preset (see :data:`PRESETS`).

        Examples
        --------
        >>> FeatureSpec.preset("small").sigmas_for("dog")
        (1.6, 2.56, 4.096)
        """
        try:
            make = PRESETS[name][1]
        except KeyError:
            raise InvalidParameterError(
                f"unknown feature preset {name!r}; choose from {sorted(PRESETS)}."
            ) from None
        return make()

    # -- serialization -------------------------------------------------------
    def to_dict(self):
        """Plain-data form (for model files).

        Keys ``'families', 'sigmas', 'spacing', 'precision',
        'structure_scales'``.

        Examples
        --------
        >>> FeatureSpec(sigmas=(1, 2), precision="fast").to_dict()["precision"]
        'fast'
        """
        if self.sigmas and isinstance(self.sigmas[0], tuple):
            sigmas = {f: list(v) for f, v in self.sigmas}
        else:
            sigmas = list(self.sigmas)
        return {"families": list(self.families), "sigmas": sigmas,
                "spacing": None if self.spacing is None else list(self.spacing),
                "precision": self.precision,
                "structure_scales": list(self.structure_scales)}

    @classmethod
    def from_dict(cls, data):
        """Inverse of :meth:`to_dict`.

        A dict without ``'precision'`` (a model file written before the
        fast path existed) is ``"exact"``, whatever :data:`DEFAULT_PRECISION`
        is, so old model files predict what they always did; one without
        ``'structure_scales'`` has the default ``(0.5, 1.0)``.

        Examples
        --------
        >>> FeatureSpec.from_dict({"families": ["gaussian"], "sigmas": [1.0]}).precision
        'exact'
        """
        sigmas = data["sigmas"]
        sigmas = ({f: tuple(v) for f, v in sigmas.items()} if isinstance(sigmas, dict)
                  else tuple(sigmas))
        return cls(families=tuple(data["families"]), sigmas=sigmas,
                   spacing=None if data.get("spacing") is None else tuple(data["spacing"]),
                   precision=data.get("precision", "exact"),
                   structure_scales=tuple(data.get("structure_scales", STRUCTURE_SCALES)))

    # -- geometry ------------------------------------------------------------
    def _default_ndim(self):
        return 2 if self.spacing is None else len(self.spacing)

    def _check_ndim(self, ndim):
        ndim = int(ndim)
        if ndim not in (2, 3):
            raise InvalidImageError(f"features need 2 or 3 spatial axes, got {ndim}.")
        if self.spacing is not None and len(self.spacing) != ndim:
            raise InvalidImageError(
                f"the feature spec has spacing {self.spacing} for {len(self.spacing)} axes, "
                f"but the image has {ndim} spatial axes; give one pixel size per axis."
            )
        return ndim

    def _sigma_px(self, sigma, ndim):
        """Per-axis sigma in pixels."""
        spacing = self.spacing or (1.0,) * ndim
        return tuple(sigma / s for s in spacing)

    def structure_px(self, sigma, ndim):
        """Per-axis ``(inner, outer)`` sigmas in pixels of the structure tensor at ``sigma``.

        Examples
        --------
        >>> FeatureSpec(families=("structure",), sigmas=(2,)).structure_px(2, 2)
        ((1.0, 1.0), (2.0, 2.0))
        """
        inner, outer = self.structure_scales
        return self._sigma_px(sigma * inner, ndim), self._sigma_px(sigma * outer, ndim)

    def halo_for(self, ndim):
        """Exact margin, per spatial axis, that a block needs (tiled == untiled).

        Parameters
        ----------
        ndim : int
            Number of spatial axes (2 or 3).

        Returns
        -------
        halo : tuple of int
            The number of pixels each feature at a pixel reads on each side
            along each axis.

        Examples
        --------
        >>> FeatureSpec(families=("gaussian",), sigmas=(1, 2)).halo_for(3)
        (8, 8, 8)
        """
        ndim = self._check_ndim(ndim)
        halo = [0] * ndim
        for fam in self.families:
            for sigma in self.sigmas_for(fam):
                px = self._sigma_px(sigma, ndim)
                if fam == "structure":
                    inner, outer = self.structure_px(sigma, ndim)
                    reach = [kernel_radius(a) + kernel_radius(b) for a, b in zip(inner, outer)]
                else:  # dog's inner sigma is smaller than sigma
                    reach = [kernel_radius(a) for a in px]
                halo = [max(h, r) for h, r in zip(halo, reach)]
        return tuple(halo)

    @property
    def halo(self):
        return self.halo_for(self._default_ndim())

    # -- names ---------------------------------------------------------------
    def feature_names(self, n_channels=1, ndim=None):
        """Names of the feature columns, in order.

        Parameters
        ----------
        n_channels : int, optional
            Number of image channels.
        ndim : int, optional
            Number of spatial axes (default: ``len(spacing)``, else 2); the
            eigenvalue families give one column per axis.

        Returns
        -------
        names : list of str

        Examples
        --------
        >>> FeatureSpec(families=("gradient",), sigmas=(2,)).feature_names(2)
        ['gradient(sigma=2)[ch0]', 'gradient(sigma=2)[ch1]']
        """
        ndim = self._check_ndim(self._default_ndim() if ndim is None else ndim)
        per_channel = []
        if "intensity" in self.families:
            per_channel.append("intensity")
        for fam in self.families:
            if fam == "intensity":
                continue
            for sigma in self.sigmas_for(fam):
                if fam in EIGEN_FAMILIES:
                    extra = ""
                    if fam == "structure" and self.structure_scales != STRUCTURE_SCALES:
                        inner, outer = self.structure_scales
                        extra = f", inner={_fmt(inner)}, outer={_fmt(outer)}"
                    per_channel.extend(f"{fam}(sigma={_fmt(sigma)}{extra}, eig={k})"
                                       for k in range(ndim))
                else:
                    per_channel.append(f"{fam}(sigma={_fmt(sigma)})")
        return [f"{name}[ch{c}]" for c in range(int(n_channels)) for name in per_channel]

    @property
    def names(self):
        return self.feature_names(1)

    def n_features(self, n_channels=1, ndim=None):
        """Number of feature columns (``len(feature_names(n_channels, ndim))``)."""
        return len(self.feature_names(n_channels, ndim))


#: Named presets: name -> (one-line description, factory).
PRESETS = {
    "default": ("intensity, gaussian 0.5-1 px, difference of Gaussians 1.6-10.5 px, "
                "gradient magnitude and Laplacian of Gaussian 0.7-1 px: objects ~10-30 px "
                "wide (the measured default)",
                lambda: FeatureSpec()),
    "small": ("as default with differences of Gaussians 1.6-4.1 px: objects up to ~12 px",
              lambda: FeatureSpec.for_object_size(12)),
    "large": ("as default with differences of Gaussians 1.6-43 px: objects ~80 px wide",
              lambda: FeatureSpec.for_object_size(80)),
    "ilastik": ("all seven families at sigmas 0.7-10 px (ilastik's full set)",
                lambda: FeatureSpec(families=_ALL_FAMILIES,
                                    sigmas=(0.7, 1.0, 1.6, 2.5, 4.0, 6.4, 10.0))),
    "skimage": ("intensity, gaussian, gradient and hessian at sigmas 1-16 px, like "
                "skimage.feature.multiscale_basic_features",
                lambda: FeatureSpec(families=("intensity", "gaussian", "gradient", "hessian"),
                                    sigmas=(1.0, 2.0, 4.0, 8.0, 16.0))),
}
