"""Image decoding, compositing and encoding. cv2's BGR order and Pillow objects stay in here."""
