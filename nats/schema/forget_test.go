package schema

import "testing"

// Only the eraser (the retention sweeper) may ask the indexer to forget
// messages; the indexer serves it. A gateway, which may query, may not.
func TestOnlyTheEraserForgets(t *testing.T) {
	forget := SearchForget()
	for _, role := range Roles {
		p, _ := RolePermissions(role)
		may := false
		for _, s := range p.Publish {
			may = may || subjectMatches(s, forget)
		}
		if may != (role == RoleEraser) {
			t.Errorf("%s may publish %s: %v", role, forget, may)
		}
	}
	p, _ := RolePermissions(RoleIndexer)
	served := false
	for _, s := range p.Subscribe {
		served = served || subjectMatches(s, forget)
	}
	if !served {
		t.Errorf("the indexer does not subscribe to %s", forget)
	}
}
