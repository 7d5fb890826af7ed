"""Build runners behind one interface; ``builderConfig.type`` picks one through ``registry``."""
