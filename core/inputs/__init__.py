"""What a job starts from: ``photos`` (pixels and EXIF, panorama detection, cameras), ``priors`` (the photo
items and their prior positions from EXIF, a CSV or a point layer), ``ortho`` (the orthophoto and the
aerial crops cut from it) and ``depth`` (depth maps from files, flat-ground depth)."""
