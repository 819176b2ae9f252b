"""The application layer: the ``autoact`` command line, the learning pipeline and the
chat app. It sits on top of every stage package and nothing below imports it."""
