"""Drop-in APIs for code written for other libraries: :mod:`litecls.compat.mediapipe`."""
