"""`ftbench list`: components, their parameters and defaults."""

from __future__ import annotations

import click
from pydantic import ValidationError
from tabulate import tabulate

from ftbench.cli.common import BadInput, registry as command_registry
from ftbench.components import KINDS
from ftbench.errors import UserInputError
from ftbench.plugins import PLURALS, create

_PLURAL = {v: k for k, v in PLURALS.items()}


def _default(field) -> str:
    return "required" if field.is_required() else repr(field.get_default(call_default_factory=True))


def _param_summary(comp) -> str:
    parts = [f"{field.alias or name}={_default(field)}"  # a suite writes the alias (lwf's `lambda`)
             for name, field in comp.params.model_fields.items()]
    return ", ".join(parts) or "-"


def _type_name(tp) -> str:
    """A field's type as a suite author reads it: `int | null`, `'ulmfit' | 'layer-decay'`."""
    import types
    import typing

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return "null"
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else _type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(tp, "__name__", str(tp))


def _show_component(comp, kind: str) -> None:
    click.echo(f"{comp.name} ({kind}, from {comp.provider})")
    click.echo(f"  {comp.description or comp.summary()}")
    fields = comp.params.model_fields
    if fields:
        rows = [(f.alias or n, _type_name(f.annotation), _default(f), f.description or "")
                for n, f in fields.items()]
        click.echo()
        click.echo(tabulate(rows, headers=["parameter", "type", "default", "description"],
                            maxcolwidths=[None, 30, 24, 70]))
    else:
        click.echo("  no parameters")
    if comp.notes:
        click.echo()
        click.echo(comp.notes.rstrip())


@click.command("list")
@click.argument("kind", required=False, type=click.Choice(sorted(_PLURAL)))
@click.argument("name", required=False)
@click.option("--groups", metavar="MODEL", help="Show the layer groups of this backbone model (timm name).")
@click.option("--backbone", "backbone_name", default="timm", show_default=True,
              help="Backbone component that --groups builds the model with.")
@click.pass_context
def list_cmd(ctx: click.Context, kind: str | None, name: str | None, groups: str | None, backbone_name: str) -> None:
    """List components: name, provider, description and parameters with defaults.

    With a NAME, one component in full: each parameter's type, default and
    description, and notes such as a dataset's folder layout.

    \b
    Example:
        ftbench list strategies
        ftbench list datasets imagefolder
        ftbench list backbones --groups resnet18
    """
    registry = command_registry(ctx)
    if groups:
        _show_groups(registry, backbone_name, groups)
        return
    if name:
        if not kind:
            raise BadInput("give the kind before the name, e.g. `ftbench list datasets imagefolder`")
        _show_component(registry.get(_PLURAL[kind], name), _PLURAL[kind])
        return
    kinds = [_PLURAL[kind]] if kind else list(KINDS)
    for k in kinds:
        rows = [(c.name, c.provider, c.summary(), _param_summary(c)) for c in registry.all(k)]
        if not rows:
            if kind:  # asked for: say so; in the overview an empty kind is noise
                click.echo(f"no {PLURALS[k]} installed")
            continue
        click.echo(f"{PLURALS[k]} ({len(rows)})")
        click.echo(tabulate(rows, headers=["name", "provider", "description", "parameters"], maxcolwidths=[None, 28, 48, 60]))
        click.echo()
    if not name and kind:
        click.echo(f"`ftbench list {kind} NAME` shows one in full.")


def _show_groups(registry, backbone_name: str, model: str) -> None:
    try:
        backbone = create(registry, "backbone", backbone_name, {"model": model, "pretrained": "none"},
                          num_classes=10, seed=0)
    except ValidationError as exc:
        raise UserInputError(f"backbone '{backbone_name}' cannot build '{model}': {exc}") from exc
    named = dict(backbone.model.named_parameters())
    rows = [(i, g.name, len(g.params), sum(named[p].numel() for p in g.params)) for i, g in enumerate(backbone.groups)]
    click.echo(tabulate(rows, headers=["depth", "group", "tensors", "parameters"]))
    click.echo(f"data config: {backbone.data_config}")
