"""What a job gives back: ``results`` (a photo's result and the GIS layer tables), ``export`` (writing and
reading them as GeoPackage, Shapefile, GeoJSON or CSV) and ``figures`` (the match figure)."""
