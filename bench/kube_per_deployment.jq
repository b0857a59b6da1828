[.items[]
 | select(.kind == "ReplicaSet")
 | (.metadata.ownerReferences // [] | map(select(.controller == true and .kind == "Deployment")) | first) as $owner
 | select($owner != null)
 | "\(.metadata.namespace)/\($owner.name)"]
| group_by(.) | map({deployment: .[0], replicasets: length})
