"""Request and response bodies, named XCreate / XUpdate / XPublic."""
