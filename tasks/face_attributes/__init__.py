"""Face attributes on CelebA, age/gender and face detection imports, faces in the wild (paper Sec. 4.4)."""
