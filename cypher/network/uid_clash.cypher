// Another network whose unit ids would share this network's uid range (a 31-bit key-hash clash).
// params: $key, $uid_base
// returns: key
MATCH (g:Network)
WHERE g.uid_base = $uid_base AND g.key <> $key
RETURN g.key AS key
