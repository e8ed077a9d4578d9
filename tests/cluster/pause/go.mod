// The sandbox ("pause") container of the real node: the public pause image cannot be pulled
// here, and it only has to hold the pod's namespaces open until it is told to stop.
module jockey.local/pause

go 1.26.0
