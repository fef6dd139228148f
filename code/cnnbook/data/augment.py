"""Batch augmentation: random crops, flips and the PCA colour shift, whole
batches at once.

Every function works on a batch N x C x H x W on the batch's own device (the
GPU when the data is there), draws its randomness from the ``torch.Generator``
it is given, and has no Python loop over images.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F


def crop(
    x: torch.Tensor, padding: int, top: torch.Tensor, left: torch.Tensor
) -> torch.Tensor:
    """Crop each image of a batch out of its zero-padded copy, at its own
    offset.

    ``x`` is N x C x H x W; ``top`` and ``left`` hold N offsets in ``[0, 2 *
    padding]`` into the padded image, so ``top = left = padding`` returns ``x``
    itself and ``top = left = 0`` shifts it ``padding`` pixels right and down.
    The padding is zero in ``x``'s own units: black for uint8 images, as in
    torchvision's ``RandomCrop(padding=...)``.
    """
    n, c, h, w = x.shape
    # N x C x (H+2p) x (W+2p)
    padded = F.pad(x, (padding, padding, padding, padding))
    width = w + 2 * padding
    # One flat gather instead of a loop over images: the index of output
    # pixel (i, r, s) in image i's flattened padded plane.
    pixel = torch.arange(h, device=x.device)[:, None] * width + torch.arange(
        w, device=x.device
    )
    index = (top * width + left).view(n, 1) + pixel.view(1, h * w)  # N x HW
    out = padded.flatten(2).gather(
        2, index.view(n, 1, h * w).expand(n, c, h * w)
    )
    return out.view(n, c, h, w)


def random_crop(
    x: torch.Tensor, padding: int, generator: torch.Generator
) -> torch.Tensor:
    """Random crops of the zero-padded images, the same size as the input
    (see ``crop``).
    """
    offsets = torch.randint(
        0, 2 * padding + 1, (2, len(x)), generator=generator, device=x.device
    )
    return crop(x, padding, offsets[0], offsets[1])


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(len(x), generator=generator, device=x.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def pca_lighting_basis(
    images: torch.Tensor, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending, shape 3) and eigenvectors (the columns of a 3 x
    3) of the RGB covariance.

    ``images`` are uint8 N x 3 x H x W; the covariance is of all their pixels'
    RGB values scaled to [0, 1], the units in which the PCA colour shift of
    Krizhevsky et al. (Sec. 4.1) is usually applied (fb.resnet.torch's ImageNet
    eigenvalues 0.2175, 0.0188, 0.0045 are in these units). It is accumulated
    in float64 over chunks of images, without a float copy of the whole data
    set.
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"pca_lighting_basis needs uint8 RGB images N x 3 x "
            f"H x W, not {images.dtype} "
            f"of shape {tuple(images.shape)}."
        )
    total, outer, count = (
        torch.zeros(3, dtype=torch.float64),
        torch.zeros(3, 3, dtype=torch.float64),
        0,
    )
    for part in images.split(chunk):
        # 3 x (n H W)
        pixels = part.transpose(0, 1).reshape(3, -1).cpu().double() / 255
        total += pixels.sum(1)
        outer += pixels @ pixels.T
        count += pixels.shape[1]
    mean = total / count
    covariance = outer / count - torch.outer(mean, mean)
    eigval, eigvec = torch.linalg.eigh(covariance)  # ascending
    return eigval.flip(0).clamp_min(0).float(), eigvec.flip(1).float()


def pca_lighting(
    x: torch.Tensor,
    std: float,
    eigval: torch.Tensor,
    eigvec: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """Krizhevsky et al.'s PCA colour shift ("fancy PCA"): one random RGB
    offset per image.

    Every pixel of image n gets ``eigvec @ (alpha_n * eigval)`` added, with
    ``alpha_n`` drawn from N(0, std^2) per image and component (the paper's std
    is 0.1). ``eigval`` and ``eigvec`` come from ``pca_lighting_basis`` (in [0,
    1] units); the shift is scaled to ``x``'s 0..255 units, and the result is
    float32 (a shift of a fraction of a grey level cannot be uint8).
    """
    # N x 3
    alpha = torch.randn(len(x), 3, generator=generator, device=x.device) * std
    # N x 3: row n is eigvec @ (alpha_n * eigval)
    shift = (alpha * eigval.to(x.device)) @ eigvec.to(x.device).T
    return x.float() + 255 * shift.view(-1, 3, 1, 1)


@dataclass(frozen=True)
class Augment:
    """Batch augmentation on the batch's device (no Python loop over images).

    The steps run in the order of the fields; a field that is off costs
    nothing. Later chapters add their own steps as new fields.

    ``pca_lighting`` needs the training set's colour basis, ``pca_basis``
    (``pca_lighting_basis``'s eigenvalues and eigenvectors, as tuples):
    ``load`` fills it in from the training split when it is None.
    """

    crop_padding: int = 4  # random crop with this much zero padding (0 = none)
    flip: bool = True  # random horizontal flip
    # std of the PCA colour shift's alphas (AlexNet: 0.1; 0 = none)
    pca_lighting: float = 0.0
    pca_basis: (
        tuple[tuple[float, ...], tuple[tuple[float, ...], ...]] | None
    ) = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.pca_lighting < 0:
            raise ValueError(
                f"pca_lighting={self.pca_lighting} is a standard "
                "deviation and must not be negative."
            )

    def with_basis(self, images: torch.Tensor) -> Augment:
        """This augmentation with ``pca_basis`` computed from ``images`` if
        it needs one and has none.
        """
        if self.pca_lighting == 0 or self.pca_basis is not None:
            return self
        eigval, eigvec = pca_lighting_basis(images)
        return replace(
            self,
            pca_basis=(
                tuple(eigval.tolist()),
                tuple(map(tuple, eigvec.tolist())),
            ),
        )

    def __call__(
        self, x: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Augment a batch ``x`` (N x C x H x W, uint8 or float in 0..255)
        with draws from ``generator``.
        """
        if self.crop_padding:
            x = random_crop(x, self.crop_padding, generator)
        if self.flip:
            x = random_flip(x, generator)
        if self.pca_lighting:
            if self.pca_basis is None:
                raise ValueError(
                    "Augment(pca_lighting=...) needs the training set's "
                    "colour basis: load(augment=...) computes "
                    "it from the training split, or call "
                    "augment.with_basis(training_images) first."
                )
            eigval, eigvec = (
                torch.tensor(v, dtype=torch.float32) for v in self.pca_basis
            )
            x = pca_lighting(x, self.pca_lighting, eigval, eigvec, generator)
        return x
