"""The local web page (``wavesep serve``): drop a song, watch it separate, play and download stems.

Modules: :mod:`~wavesep.web.jobs` (the job queue, its temporary folder, upload checks and file
names; no web framework), :mod:`~wavesep.web.app` (the FastAPI application: JSON API and the
page), :mod:`~wavesep.web.serve` (the command line, running uvicorn), ``static/`` (the page:
plain HTML and JavaScript, no build step).

It may import wavesep's top-level modules (api, audio, separate, pretrained, errors, atomic);
nothing in wavesep imports it. FastAPI and uvicorn come with the ``web`` extra
(``pip install -e ".[web]"``).
"""
