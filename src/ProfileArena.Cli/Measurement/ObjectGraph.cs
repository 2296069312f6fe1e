using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace ProfileArena.Cli.Measurement;

/// <summary>
/// Counts managed objects reachable from a root by walking instance fields with reflection.
/// An in-process estimate for small graphs only (the single-tree report); a heap snapshot is the
/// authoritative count. Shared objects (e.g. a static empty array) count once; Type and delegate
/// objects count but are not entered (they lead into runtime internals).
/// </summary>
internal static class ObjectGraph
{
    private const BindingFlags InstanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
    private static readonly ConcurrentDictionary<Type, bool> s_containsReferences = new();

    public static long CountReachable(object root, long limit = 10_000_000)
    {
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var pending = new Stack<object>();
        Visit(root);
        while (pending.Count > 0 && seen.Count < limit)
        {
            object obj = pending.Pop();
            Type type = obj.GetType();
            if (obj is Type or Delegate or Pointer)
                continue;
            if (obj is Array array)
            {
                if (ContainsReferences(type.GetElementType()!))
                {
                    foreach (object? element in array)
                        VisitValue(element);
                }
                continue;
            }
            VisitFields(obj, type);
        }
        return seen.Count;

        void Visit(object? obj)
        {
            if (obj is not null && seen.Add(obj))
                pending.Push(obj);
        }

        // A value read from a field or array: a reference, or a boxed struct whose fields we enter.
        void VisitValue(object? value)
        {
            if (value is null)
                return;
            Type type = value.GetType();
            if (type.IsValueType)
            {
                if (ContainsReferences(type))
                    VisitFields(value, type);
            }
            else
            {
                Visit(value);
            }
        }

        void VisitFields(object obj, Type type)
        {
            for (Type? t = type; t is not null; t = t.BaseType)
            {
                foreach (FieldInfo field in t.GetFields(InstanceFields | BindingFlags.DeclaredOnly))
                {
                    if (ContainsReferences(field.FieldType))
                        VisitValue(field.GetValue(obj));
                }
            }
        }
    }

    private static bool ContainsReferences(Type type) => s_containsReferences.GetOrAdd(type, static t =>
    {
        if (t.IsPointer || t.IsFunctionPointer || t.IsPrimitive || t.IsEnum || t.IsByRefLike)
            return false;
        if (!t.IsValueType)
            return true;
        foreach (FieldInfo field in t.GetFields(InstanceFields))
        {
            if (field.FieldType != t && ContainsReferences(field.FieldType))
                return true;
        }
        return false;
    });
}
