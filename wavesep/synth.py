"""Old module path of :mod:`wavesep.corpus.command`, kept so that ``python -m wavesep.synth``,
``wavesep-synth`` and ``from wavesep.synth import build_corpus`` keep working.

It only re-exports names: to change the registry or the loaded renderers, patch
:mod:`wavesep.corpus.command`, not this module.
"""

from wavesep.corpus.command import (  # noqa: F401
    DEFAULTS,
    HEADROOM_PEAK,
    META_FOLDER,
    MIXTURE,
    PARTIAL_FOLDER,
    RENDERERS,
    SOURCES,
    SPLITS,
    SPLITS_FILE,
    build_corpus,
    load_renderer,
    main,
    render_track,
    track_name,
    track_seed,
)

__all__ = ["DEFAULTS", "HEADROOM_PEAK", "META_FOLDER", "MIXTURE", "PARTIAL_FOLDER", "RENDERERS",
           "SOURCES", "SPLITS", "SPLITS_FILE", "build_corpus", "load_renderer", "main", "render_track",
           "track_name", "track_seed"]

if __name__ == "__main__":
    raise SystemExit(main())
