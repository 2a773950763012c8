"""Training the bundled models: the face teacher, the quality metric (SWD) and one trainer per family.

Not imported by the GUI; run the trainers as `python -m explorer.training.<family> --help`, with
<family> one of progan, stylegan1, stylegan2 and stylegan3 (`--cfg t` or `r`).
"""
