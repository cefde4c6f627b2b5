// The installed Graph Data Science library version (fails when the plugin is absent).
// params: none
// returns: version
CALL gds.version() YIELD gdsVersion
RETURN gdsVersion AS version
