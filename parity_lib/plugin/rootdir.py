"""The suite's path options never move pytest's rootdir.

pytest picks its rootdir and config file *before* it loads plugins from entry points, so at that moment
`--parity-results-dir /elsewhere` is an unknown option and `/elsewhere` looks like a test path: the
rootdir becomes a common ancestor, pyproject.toml is not read, markers are unknown and addopts are lost.
The `=` form (`--parity-results-dir=/elsewhere`) never had the problem. For the space form, the plugin
redoes pytest's own `determine_setup` with the option values taken out of the path arguments, and when
that gives another rootdir or config file it adopts them (and the config file's addopts) before any
conftest is loaded. This touches pytest's private `Config` attributes: pytest is pinned below 10 and a
test runs the space form end to end.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

VALUED = ("--parity-model", "--parity-prompts", "--parity-results-dir", "--parity-reports-dir",
          "--parity-tools", "--parity-dtype", "--parity-device", "--parity-seed", "--parity-repeats",
          "--parity-steer-with", "--parity-scope", "--parity-multiplier", "--parity-max-new-tokens",
          "--parity-gen-batch-size", "--parity-n-eval")


def option_values(args: list[str]) -> set[str]:
    """Arguments that are values of the suite's options given in the space form."""
    return {value for flag, value in zip(args, args[1:]) if flag in VALUED}


def restore_rootdir(config: pytest.Config, args: list[str]) -> None:
    values = option_values(args)
    if not values:
        return
    from _pytest.config.findpaths import determine_setup

    ns = config.known_args_namespace
    paths = [a for a in ns.file_or_dir if a not in values]
    rootpath, inipath, inicfg, *rest = determine_setup(
        inifile=ns.inifilename, override_ini=ns.override_ini, args=paths,
        rootdir_cmd_arg=ns.rootdir or None, invocation_dir=config.invocation_params.dir)
    if rootpath == config.rootpath and inipath == config.inipath:
        return
    had_addopts = bool(config.inipath)
    cfg: Any = config
    cfg._rootpath, cfg._inipath, cfg._inicfg = rootpath, inipath, inicfg
    if rest:
        cfg._ignored_config_files = rest[0]
    cfg._inicache.clear()
    cfg._parser.extra_info["rootdir"] = str(rootpath)
    cfg._parser.extra_info["inifile"] = str(inipath)
    if not had_addopts:
        args[:] = list(config.getini("addopts")) + args
    config.known_args_namespace = cfg._parser.parse_known_args(args, namespace=copy.copy(config.option))
    config.known_args_namespace.confcutdir = str(inipath.parent if inipath else rootpath)
