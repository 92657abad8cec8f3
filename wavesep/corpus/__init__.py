"""Offline corpora: synthetic multitracks in the MUSDB18-HQ layout, rendered without downloads.

- :mod:`~wavesep.corpus.command`: the corpus writer and its command line
  (``python -m wavesep.synth``, ``wavesep synth``): seeds, splits, folders, mixing, resuming.
- :mod:`~wavesep.corpus.oscillator`: the oscillator renderer (wavetables, formant voice, drum kit).
- :mod:`~wavesep.corpus.sampled`: the sampled renderer (public-domain scores arranged with MMA
  grooves, played by FluidSynth, mixed with room effects).
- :mod:`~wavesep.corpus.singing`: the sampled renderer's singers, one module per method.
- :mod:`~wavesep.corpus.backing`: real, voice-free recordings from Debian packages for
  ``train.py --backing`` (download, conversion, a voice screen, selection).
- :mod:`~wavesep.corpus.revoice`: a rendered corpus's vocal lines sung again with recorded speech
  through the WORLD vocoder, for ``train.py --voices``.

May import: the shared basics (wavesep.atomic, wavesep.errors, wavesep.audio) and, lazily in the
backing voice screen alone, the inference API (wavesep.api) that separates the screened
recordings. Nothing here imports data, training or evaluation: corpora feed :mod:`wavesep.data`
on disk.
"""
