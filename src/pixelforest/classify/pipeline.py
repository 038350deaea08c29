"""The fitted prediction pipeline: normalize, compute features, classify, one block at a time.

:class:`PredictionPipeline` is the one seam through which every consumer
predicts: :meth:`PixelClassifier.predict <pixelforest.classify.classifier.PixelClassifier.predict>`
in memory, :mod:`pixelforest.scale` for images larger than memory and for
batches, and an interactive viewer that predicts only the region in view.
It is immutable and holds everything a prediction needs (feature spec,
normalization rule, fitted estimator, classes, expected channels and
spatial axes), so it can be shipped to dask workers as it is.

Prediction of a sub-array runs in two steps:

1. **Statistics of the whole image**, once: :meth:`PredictionPipeline.statistics`
   (in memory) or :func:`pixelforest.scale.statistics.lazy_statistics` (a
   dask or Zarr array, without loading it).  They are the per-channel
   ``(low, high)`` bounds of the normalization, or None without one.
2. **One block at a time**: :meth:`PredictionPipeline.predict_proba_block`
   and :meth:`PredictionPipeline.predict_block` take a raw channel-last
   block cut from the image with a margin of :attr:`PredictionPipeline.halo`
   pixels (less at the image border), the statistics of step 1, an
   optional ``crop`` of the block to return, and a thread budget.  The
   result equals, bit for bit, the same pixels of the whole image's.

Words used throughout the package: a **block** is a sub-array processed in
one go (cut with its **halo**); a **crop** is the part of a block whose
result is kept; a **chunk** is a unit of storage of a Zarr or dask array.

Input is checked once, at the public edge (:meth:`PredictionPipeline.check_image`
or :meth:`PredictionPipeline.check_shape`); the block methods trust it.
"""

from __future__ import annotations

import itertools

import numpy as np

from pixelforest._shared.threads import limit_blas_threads, resolve_n_threads, run_on_pool
from pixelforest._shared.validation import check_channel_axis, check_image, to_channel_last
from pixelforest.errors import ChannelMismatchError, InvalidImageError, NotFittedError
from pixelforest.features.compute import (block_side, check_fits_halo,
                                          feature_planes_of_block, features_of_block)
from pixelforest.preprocess.normalize import (
    ROBUST_CLIP,
    bounds_channel_last,
    robust_statistics_channel_last,
    stretch_channel_last,
    stretch_robust,
)

__all__ = ["NORMALIZATIONS", "PredictionPipeline", "pipeline_of"]

#: Every normalization rule, with the percentiles ``(low, high)`` it maps to
#: 0 and 1; ``"robust"`` maps the two classes' medians
#: (:func:`~pixelforest.preprocess.normalize.robust_bounds`) instead, and
#: None leaves intensities as they are.
NORMALIZATIONS = {"percentile": (1.0, 99.8), "minmax": (0.0, 100.0), "robust": None,
                  None: None}

#: The range each normalization's output is clipped to.
CLIP_RANGES = {"percentile": (0.0, 1.0), "minmax": (0.0, 1.0), "robust": ROBUST_CLIP}

#: Feature rows per call of the estimator (bounds one step's memory).
_ROWS_PER_CALL = 1 << 18

#: Block of in-memory prediction (pixels per axis, without the halo), 2D
#: and 3D (Z, Y, X): a block's features stay in cache and bound the memory;
#: in 3D, 64 planes of 128 x 128 (one feature block of
#: :mod:`pixelforest.features.compute`) waste less on the halo than cubes
#: of 96 for about as many voxels (``benchmarks/README.md``).  A 3D stack
#: whose feature blocks are smaller
#: (:func:`~pixelforest.features.compute.block_side`, many columns) is cut
#: into cubes of that side instead.
BLOCK_2D = 512
BLOCK_3D = (64, 128, 128)


class PredictionPipeline:
    """Normalization, features and a fitted estimator, applied block by block.

    Built by :meth:`PixelClassifier.fit <pixelforest.classify.classifier.PixelClassifier.fit>`
    (as ``clf.pipeline_``) and by :func:`pixelforest.load_model`; not
    usually made by hand.  Immutable: its attributes cannot be reassigned.

    Parameters
    ----------
    spec : FeatureSpec
        The features.
    normalize : {"percentile", "minmax", "robust", None}
        Normalization rule (see :data:`NORMALIZATIONS`).
    estimator : fitted classifier
        Maps feature rows to class probabilities.
    classes : array_like
        Class values, in the order of the estimator's probability columns.
    n_channels : int
        Channels the image must have.
    ndim : int
        Spatial axes the image must have (2 or 3).
    channel_axis : int or None, optional
        Where the channels are in the images given to :meth:`check_image`.

    Attributes
    ----------
    halo : tuple of int
        Margin per spatial axis a block needs for an exact interior.
    n_features : int
        Feature columns.
    feature_names : tuple of str
        Name of each feature column.

    Examples
    --------
    >>> import numpy as np
    >>> from pixelforest import PixelClassifier
    >>> from pixelforest.features import FeatureSpec
    >>> image = np.zeros((64, 64), np.float32); image[20:44, 20:44] = 1
    >>> scribbles = np.zeros(image.shape, np.uint8)
    >>> scribbles[2, 2:60], scribbles[32, 26:38] = 1, 2
    >>> clf = PixelClassifier(FeatureSpec(sigmas=(1, 2))).fit(image, scribbles)
    >>> pipe = clf.pipeline_
    >>> image_cl = pipe.check_image(image)        # checked once, channels last
    >>> stats = pipe.statistics(image_cl)         # whole-image statistics
    >>> h = pipe.halo[0]
    >>> block = image_cl[16 - h:48 + h, 16 - h:48 + h]
    >>> crop = (slice(h, h + 32), slice(h, h + 32))
    >>> part = pipe.predict_block(block, stats, crop=crop, n_threads=1)
    >>> bool((part == clf.predict(image)[16:48, 16:48]).all())
    True
    """

    __slots__ = ("spec", "normalize", "estimator", "classes", "n_channels", "ndim",
                 "channel_axis", "halo", "n_features", "feature_names")

    def __init__(self, *, spec, normalize, estimator, classes, n_channels, ndim,
                 channel_axis=None):
        classes = np.array(classes)
        classes.setflags(write=False)
        ndim = int(ndim)
        values = {
            "spec": spec, "normalize": normalize, "estimator": estimator,
            "classes": classes, "n_channels": int(n_channels), "ndim": ndim,
            "channel_axis": channel_axis,
            "halo": tuple(int(h) for h in spec.halo_for(ndim)),
            "feature_names": tuple(spec.feature_names(int(n_channels), ndim)),
        }
        values["n_features"] = len(values["feature_names"])
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"PredictionPipeline is immutable; cannot set {name!r}")

    def __delattr__(self, name):
        raise AttributeError(f"PredictionPipeline is immutable; cannot delete {name!r}")

    def __reduce__(self):  # for dask workers: rebuilt from its parts
        return (_rebuild, ({name: getattr(self, name) for name in (
            "spec", "normalize", "estimator", "classes", "n_channels", "ndim",
            "channel_axis")},))

    def __repr__(self):
        return (f"PredictionPipeline({self.n_features} features, {self.n_channels} "
                f"channel(s), {self.ndim}-D, classes {self.classes.tolist()}, "
                f"normalize={self.normalize!r})")

    # -- the public edge ---------------------------------------------------
    @property
    def percentiles(self):
        """``(low, high)`` percentiles of the normalization, or None for none."""
        return NORMALIZATIONS[self.normalize]

    def check_shape(self, spatial_shape, n_channels, *, name="image", channel_axis="training"):
        """Refuse an image of the wrong channels, spatial axes, or not larger than the halo.

        Parameters
        ----------
        spatial_shape : tuple of int
            The image's shape without its channel axis.
        n_channels : int
            Its number of channels.
        name : str, optional
            How the image is called in messages.
        channel_axis : int, None or "training", optional
            The image's channel axis, for messages.

        Raises
        ------
        ChannelMismatchError
            Channels differ from training.
        InvalidImageError
            Spatial axes differ from training, or an axis is not longer
            than the halo.
        """
        if isinstance(channel_axis, str) and channel_axis == "training":
            channel_axis = self.channel_axis
        if n_channels != self.n_channels:
            raise ChannelMismatchError(_channel_message(n_channels, self.n_channels,
                                                        channel_axis, name))
        if len(spatial_shape) != self.ndim:
            if (len(spatial_shape) == self.ndim + 1 and channel_axis is None
                    and spatial_shape[-1] in (3, 4)):
                raise ChannelMismatchError(
                    f"{name} of shape {tuple(spatial_shape)} looks like an RGB(A) image but "
                    "the model was trained on single-channel images; convert it to grey "
                    "(e.g. imread(path, as_gray=True)) or train a model on RGB images "
                    "(channel_axis=-1, or pixelforest train --channel-axis -1)."
                )
            raise InvalidImageError(
                f"{name} has {len(spatial_shape)} spatial axes but the model was trained "
                f"on {self.ndim}-D images; predict on {self.ndim}-D images or retrain."
            )
        check_fits_halo(tuple(spatial_shape), self.halo, name=name)

    def check_rank(self, shape, channel_axis, *, name="image"):
        """Refuse a grey image for a multichannel model before its layout is checked.

        Without this, a ``(Y, X)`` image given with the training
        ``channel_axis`` of an RGB model would be refused as "1-D"; the
        real problem is the missing channels.
        """
        if channel_axis is not None and self.n_channels > 1 and len(shape) == self.ndim:
            raise ChannelMismatchError(
                f"{name} of shape {tuple(shape)} has no channel axis but the model was "
                f"trained on {self.n_channels} channels (channel_axis={self.channel_axis}); "
                "predict on images with those channels, or train a model on grey images "
                "(without channel_axis / --channel-axis)."
            )

    def check_image(self, image, *, channel_axis="training", name="image"):
        """Check an in-memory image once and return it channel-last.

        Parameters
        ----------
        image : array_like
            The image.
        channel_axis : int, None or "training", optional
            Its channel axis; by default that of the training images.
        name : str, optional
            How the image is called in messages.

        Returns
        -------
        image_cl : ndarray
            A view with the channels last (``(..., n_channels)``).

        Raises
        ------
        InvalidImageError, ChannelMismatchError
            See :func:`pixelforest._shared.validation.check_image` and
            :meth:`check_shape`.
        """
        if isinstance(channel_axis, str) and channel_axis == "training":
            channel_axis = self.channel_axis
        self.check_rank(np.shape(image), channel_axis, name=name)
        image = check_image(image, channel_axis=channel_axis, name=name)
        axis = check_channel_axis(channel_axis, image.ndim, name=name)
        image_cl, n_channels = to_channel_last(image, axis)
        self.check_shape(image_cl.shape[:-1], n_channels, name=name, channel_axis=axis)
        return image_cl

    # -- statistics --------------------------------------------------------
    def statistics(self, image_cl):
        """Whole-image normalization statistics of a checked channel-last image.

        Returns
        -------
        stats : ndarray of float64, shape (n_channels, 2) or (n_channels, 4), or None
            Per-channel ``(low, high)`` mapped to 0 and 1 (``"robust"``
            adds the fill of a large constant region, see
            :func:`~pixelforest.preprocess.normalize.robust_statistics_channel_last`);
            None when the pipeline does not normalize.
        """
        if self.normalize == "robust":
            return robust_statistics_channel_last(np.asarray(image_cl))
        q = self.percentiles
        if q is None:
            return None
        return bounds_channel_last(np.asarray(image_cl), *q)

    # -- one block ---------------------------------------------------------
    def normalized(self, block_cl, stats):
        """The block as float32, normalized by ``stats`` (None: as it is)."""
        if stats is None:
            return block_cl.astype(np.float32)
        if self.normalize == "robust":
            return stretch_robust(block_cl, stats, CLIP_RANGES["robust"])
        return stretch_channel_last(block_cl, stats, clip=True)

    def features_block(self, block_cl, stats, *, crop=None, n_threads=1):
        """Feature stack ``(crop shape..., n_features)`` of a raw channel-last block."""
        return features_of_block(self.normalized(block_cl, stats), self.spec, crop=crop,
                                 n_threads=n_threads)

    def predict_proba_rows(self, X, *, n_threads=1):
        """Class probabilities ``(n_rows, n_classes)`` float32 of feature rows.

        Forests and trees go through the compiled exact kernel of
        :func:`pixelforest.forest.inference.forest_predict_proba` (the
        estimator's own ``predict_proba``); other estimators through theirs.
        """
        from pixelforest.forest.inference import forest_predict_proba

        out = np.empty((X.shape[0], self.classes.size), dtype=np.float32)
        for start in range(0, X.shape[0], _ROWS_PER_CALL):
            stop = start + _ROWS_PER_CALL
            forest_predict_proba(self.estimator, X[start:stop], n_threads=n_threads,
                                 out=out[start:stop])
        return out

    def predict_proba_block(self, block_cl, stats, *, crop=None, n_threads=1):
        """Class probabilities of a raw channel-last block.

        Parameters
        ----------
        block_cl : ndarray
            Channel-last block of a checked image, cut with a margin of
            :attr:`halo` pixels where the image extends that far.
        stats : ndarray or None
            :meth:`statistics` of the whole image.
        crop : tuple of slice, optional
            The part of the block to compute (one slice per spatial axis);
            None computes all of it (exact beyond the halo only).
        n_threads : int or None, optional
            Threads for the features and the forest (None: the
            ``PIXELFOREST_NUM_THREADS`` default).  A caller already running
            blocks in parallel passes 1.

        Returns
        -------
        proba : ndarray of float32, shape ``(crop shape..., n_classes)``
            Column ``k`` is the probability of ``classes[k]``.
        """
        # feature-major planes: what the forest reads, with no interleaving
        planes = feature_planes_of_block(self.normalized(block_cl, stats), self.spec,
                                         crop=crop, n_threads=n_threads)
        shape = planes.shape[1:]
        proba = self.predict_proba_rows(planes.reshape(planes.shape[0], -1).T,
                                        n_threads=n_threads)
        del planes
        return proba.reshape(shape + (self.classes.size,))

    def labels_of(self, proba):
        """Class values of the most probable class of each row of ``proba``.

        Ties go to the first class, as with ``np.argmax``.
        """
        if self.classes.size == 2:  # one comparison per pixel instead of an argmax
            return np.where(proba[..., 1] > proba[..., 0], self.classes[1], self.classes[0])
        return self.classes[np.argmax(proba, axis=-1)]

    def predict_block(self, block_cl, stats, *, crop=None, n_threads=1):
        """Class labels of a raw channel-last block (see :meth:`predict_proba_block`)."""
        return self.labels_of(self.predict_proba_block(block_cl, stats, crop=crop,
                                                       n_threads=n_threads))

    def _block_3d(self):
        """:data:`BLOCK_3D`, or cubes of the feature block's side when that is smaller."""
        side = block_side(3, self.n_features)
        return BLOCK_3D if side >= max(BLOCK_3D) else (side,) * 3

    # -- a region of an image -------------------------------------------------
    def cut_with_halo(self, where, spatial_shape):
        """The block to read for the region ``where`` of an image, and the crop of it to keep.

        Parameters
        ----------
        where : tuple of slice
            The region (one slice with non-negative bounds and step 1 per
            spatial axis).
        spatial_shape : tuple of int
            The image's spatial shape.

        Returns
        -------
        cut, crop : tuple of slice
            ``image_cl[cut]`` is the region grown by the halo (clipped at
            the image border); ``crop`` locates the region inside it.
        """
        cut, crop = [], []
        for s, h, n in zip(where, self.halo, spatial_shape):
            lo, hi = max(0, s.start or 0), min(n, n if s.stop is None else s.stop)
            a, z = max(lo - h, 0), min(hi + h, n)
            cut.append(slice(a, z))
            crop.append(slice(lo - a, hi - a))
        return tuple(cut), tuple(crop)

    def predict_region(self, image_cl, where, stats, *, probabilities=False, n_threads=None):
        """Labels (or probabilities) of one region of a checked image, exactly.

        Equal, bit for bit, to the same pixels of the whole image's result
        when ``stats`` are the whole image's statistics: what a viewer needs
        to predict only the part of a large image in view.  ``image_cl``
        may be any array that slices to numpy (numpy, Zarr, dask).

        Parameters
        ----------
        image_cl : array_like
            The whole channel-last image (checked once by the caller).
        where : tuple of slice
            The region, one slice per spatial axis.
        stats : ndarray or None
            :meth:`statistics` of the whole image (for a lazy array,
            :func:`pixelforest.scale.statistics.lazy_statistics`).
        probabilities : bool, optional
            Return probabilities rather than labels.
        n_threads : int or None, optional
            The thread budget.
        """
        cut, crop = self.cut_with_halo(where, image_cl.shape[:-1])
        block = np.asarray(image_cl[cut])
        step = self.predict_proba_block if probabilities else self.predict_block
        return step(block, stats, crop=crop, n_threads=n_threads)

    # -- a whole image in memory --------------------------------------------
    def run_blocks(self, image_cl, emit, *, stats=None, probabilities=True, n_threads=None,
                   block=None):
        """Call ``emit(where, result)`` for every block of a checked in-memory image.

        The image is cut into blocks of :data:`BLOCK_2D` (2D) or
        :data:`BLOCK_3D` (3D) pixels per axis, each read with its halo; the
        results together equal the whole image's, bit for bit.  With more
        than one block and thread, blocks run on one pool of ``n_threads``
        threads, each single-threaded; a single block gets every thread.

        Parameters
        ----------
        image_cl : ndarray
            From :meth:`check_image`.
        emit : callable
            ``emit(where, result)`` with ``where`` the block's slices in the
            image and ``result`` its probabilities (``probabilities=True``)
            or labels.  Called from the pool's threads.
        stats : ndarray or None, optional
            Whole-image statistics; None computes them from ``image_cl``.
        probabilities : bool, optional
            Emit probabilities rather than labels.
        n_threads : int or None, optional
            The thread budget (None: ``PIXELFOREST_NUM_THREADS`` or every core).
        block : int or tuple of int, optional
            Block side per axis (default :data:`BLOCK_2D` / :data:`BLOCK_3D`).
        """
        if stats is None:
            stats = self.statistics(image_cl)
        spatial = image_cl.shape[:-1]
        if block is None:
            block = BLOCK_2D if len(spatial) == 2 else self._block_3d()
        block = (int(block),) * len(spatial) if np.isscalar(block) else tuple(block)
        origins = list(itertools.product(*[range(0, n, b) for n, b in zip(spatial, block)]))
        budget = resolve_n_threads(n_threads)
        n_workers = min(budget, len(origins))
        inner = 1 if n_workers > 1 else budget
        step = self.predict_proba_block if probabilities else self.predict_block

        def work(origin):
            where = tuple(slice(lo, min(lo + b, n)) for lo, b, n in zip(origin, block, spatial))
            cut, crop = self.cut_with_halo(where, spatial)
            emit(where, step(image_cl[cut], stats, crop=crop, n_threads=inner))

        if n_workers == 1:
            for origin in origins:
                work(origin)
            return
        # one pool: the blocks' features, forests and BLAS run single-threaded
        with limit_blas_threads(1):
            run_on_pool(work, origins, n_workers, name="pf-block")

    def predict_proba(self, image_cl, *, stats=None, n_threads=None):
        """Probabilities ``(spatial..., n_classes)`` float32 of a checked image."""
        out = np.empty(image_cl.shape[:-1] + (self.classes.size,), dtype=np.float32)

        def emit(where, proba):
            out[where] = proba

        self.run_blocks(image_cl, emit, stats=stats, probabilities=True, n_threads=n_threads)
        return out

    def predict(self, image_cl, *, stats=None, n_threads=None):
        """Labels (the class values) of a checked image, without its whole probabilities."""
        out = np.empty(image_cl.shape[:-1], dtype=self.classes.dtype)

        def emit(where, labels):
            out[where] = labels

        self.run_blocks(image_cl, emit, stats=stats, probabilities=False, n_threads=n_threads)
        return out


def pipeline_of(model):
    """The :class:`PredictionPipeline` of a fitted classifier (or the pipeline itself)."""
    if isinstance(model, PredictionPipeline):
        return model
    pipeline = getattr(model, "pipeline_", None)
    if not isinstance(pipeline, PredictionPipeline):
        raise NotFittedError(
            f"this {type(model).__name__} is not fitted yet; call fit(images, labels) "
            "or load a trained model with pixelforest.load_model(path) first."
        )
    return pipeline


def _rebuild(parts):
    return PredictionPipeline(**parts)


def _channel_message(n_channels, expected, channel_axis, name):
    """Why an image's channels do not fit the model, and what to pass instead."""
    if expected == 1 and n_channels > 1:
        fix = ("the model was trained on single-channel images: convert this one to grey "
               "(e.g. imread(path, as_gray=True)) or retrain on images like it "
               "(channel_axis=-1, or pixelforest train --channel-axis -1)")
    elif n_channels == 1 and expected > 1:
        fix = (f"the model expects {expected} channels: pass an image with them, or "
               "retrain on grey images (without channel_axis / --channel-axis)")
    else:
        fix = "pass an image with the training channels, in the same order, or retrain"
    return (f"{name} has {n_channels} channel(s) (channel_axis={channel_axis}) but the "
            f"model was trained on {expected}; {fix}.")
