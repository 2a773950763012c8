"""Build our StyleGAN2 / StyleGAN3 modules (and, on demand, the discriminator) from an NVIDIA persistence pickle."""

from __future__ import annotations

from pathlib import Path

from ..errors import LoadError
from ..networks import stylegan2, stylegan3
from ..networks.discriminator import Discriminator
from .checkpoint import Checkpoint, load_state
from .nvidia_pickle import ModuleRecord, read_nvidia_pickle

FORMAT = "nvidia-persistence-pickle"
DEFAULT_NETWORKS = ("G_ema", "G")


def _pick(path: Path, nets: dict[str, ModuleRecord], network: str | None) -> str:
    generators = [k for k, v in nets.items() if v.class_name.endswith("Generator")]
    if network is None:
        for name in DEFAULT_NETWORKS:
            if name in generators:
                return name
        if generators:
            return generators[0]
        raise LoadError(f"{path}: the pickle holds no generator (networks: {', '.join(nets) or 'none'})")
    if network not in nets:
        raise LoadError(f"{path}: no network {network!r} in the file (it has: {', '.join(nets)})")
    if network not in generators:
        raise LoadError(f"{path}: network {network!r} is a {nets[network].class_name}, not a generator")
    return network


def load(path: Path, data: bytes, network: str | None = None, resolution: int | None = None) -> Checkpoint:
    """Read the pickle as data and rebuild the chosen generator (default: the EMA one)."""
    nets = read_nvidia_pickle(path, data=data)
    name = _pick(path, nets, network)
    record = nets[name]
    state = record.state_dict()
    kwargs = record.init_kwargs
    if not kwargs:
        raise LoadError(f"{path}: network {name!r} does not record its constructor arguments")

    if "synthesis.input.freqs" in state:
        radial = bool(kwargs.get("use_radial_filters", False))
        family, source = ("stylegan3-r" if radial else "stylegan3-t"), "nvlabs-stylegan3"
        build = stylegan3.Generator
    elif "synthesis.b4.const" in state:
        family = "stylegan2"
        if _from_ada(nets):
            source = "nvlabs-stylegan2-ada-pytorch"
            nested = kwargs.pop("synthesis_kwargs", {})
            if not isinstance(nested, dict):
                raise LoadError(f"{path}: network {name!r} records its synthesis_kwargs as a "
                                f"{type(nested).__name__}, not a dict")
            kwargs = {**kwargs, **nested}
        else:
            source = "nvlabs-stylegan3"
            kwargs = {"num_fp16_res": 4, "conv_clamp": 256, **kwargs}
        kwargs.pop("fused_modconv_default", None)  # an execution detail, same result either way
        build = stylegan2.Generator
    else:
        raise LoadError(f"{path}: network {name!r} ({record.class_name}) is not a StyleGAN2 or StyleGAN3 generator")

    try:
        generator = build(**kwargs)
        generator.load_state_dict(state, strict=True)
    except (TypeError, ValueError, RuntimeError, KeyError, ArithmeticError) as e:  # e.g. a width of 0
        raise LoadError(f"{path}: network {name!r} does not fit a {family} generator ({e})") from None
    gens = tuple(k for k, v in nets.items() if v.class_name.endswith("Generator"))
    return Checkpoint(generator=generator, family=family, source=source, format=FORMAT, config=kwargs,
                      network=name, networks=gens, discriminator=_discriminator_name(nets))


def _discriminator_name(nets: dict[str, ModuleRecord]) -> str | None:
    """The file's discriminator network ('D' in a training snapshot), or None."""
    return next((k for k, v in nets.items() if v.class_name.endswith("Discriminator")), None)


def _from_ada(nets: dict[str, ModuleRecord]) -> bool:
    """Whether stylegan2-ada-pytorch wrote the file: it nests the generator's synthesis_kwargs, the
    stylegan3 repo passes them flat (and defaults to fp16 on 4 resolutions and conv clamp 256)."""
    return any("synthesis_kwargs" in v.init_kwargs for v in nets.values() if v.class_name.endswith("Generator"))


def load_discriminator(path: Path, data: bytes, network: str | None = None) -> Discriminator | None:
    """Rebuild the file's discriminator `network` (None: the one it has, e.g. 'D') strictly from its
    arguments and tensors; None when `network` is None and the file holds no discriminator.

    Raises:
        LoadError: no such network, not a discriminator, or tensors that do not fit one.
    """
    nets = read_nvidia_pickle(path, data=data)
    if network is None:
        network = _discriminator_name(nets)
        if network is None:
            return None
    if network not in nets:
        raise LoadError(f"{path}: no network {network!r} in the file (it has: {', '.join(nets)})")
    record = nets[network]
    kwargs = record.init_kwargs
    if not record.class_name.endswith("Discriminator") or not kwargs:
        raise LoadError(f"{path}: network {network!r} ({record.class_name}) is not a discriminator we can rebuild")
    # Where train.py leaves it unset, each repository's own default conv clamp.
    kwargs = {"conv_clamp": None if _from_ada(nets) else 256, **kwargs}
    # Speed and training switches that do not change what D computes in float32.
    kwargs.pop("num_fp16_res", None)
    block_kwargs = kwargs.get("block_kwargs") or {}
    kwargs["block_kwargs"] = {k: v for k, v in block_kwargs.items() if k not in ("freeze_layers", "fp16_channels_last")}
    what = f"network {network!r} does not fit a StyleGAN2 discriminator"
    try:
        discriminator = Discriminator(**kwargs)
    except (TypeError, ValueError, ArithmeticError) as e:
        raise LoadError(f"{path}: {what} ({e})") from None
    load_state(path, discriminator, record.state_dict(), what)
    return discriminator.eval().requires_grad_(False)
