using ProfileArena.Native;

namespace ProfileArena;

public sealed unsafe partial class TreeStore
{
    private void VerifyMappedTree(StoreRoot* root, TreeRecord* tree) => throw new NotImplementedException();
}
