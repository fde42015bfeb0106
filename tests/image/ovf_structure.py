#!/usr/bin/env python3
"""Checks an OVF 1.x descriptor against the structure DMTF's envelope schema (DSP8023) and the
CIM RASD/VSSD schemas require, and its references against the files packed beside it.

usage: ovf_structure.py DESCRIPTOR.ovf NAME=SIZE...
  (every other file in the package but the manifest .mf and certificate .cert, which OVF
  does not reference)

What is checked (each rule from the schema or from DSP0243):
- well-formed XML whose root is ovf:Envelope;
- Envelope holds References, then Sections, then exactly one VirtualSystem or
  VirtualSystemCollection, then Strings only;
- every Section and the VirtualSystem start with a non-empty Info; the VirtualSystem has an
  ovf:id and Name, if present, comes right after Info;
- every File has ovf:id and ovf:href; each href is one of the packed files, with ovf:size equal
  to its size; no file is packed without a File;
- every Disk has ovf:diskId, a whole-number ovf:capacity and an ovf:fileRef naming a File;
- VirtualHardwareSection: Info, at most one System, then Items; System's and every Item's
  children are CIM elements of their class, in the schema's (alphabetical) sequence, with the
  required ElementName and InstanceID; InstanceIDs are unique; an Item's Parent names another
  Item's InstanceID, its HostResource ovf:/disk/ID a Disk, its Connection a Network;
- OperatingSystemSection has a whole-number ovf:id (a CIM operating system type).
Prints "ok" and exits 0, or prints every problem and exits 1.
"""
import sys
import xml.etree.ElementTree as ET

OVF = "{http://schemas.dmtf.org/ovf/envelope/1}"
RASD = "{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData}"
VSSD = "{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData}"

# The class sequences of CIM_ResourceAllocationSettingData and CIM_VirtualSystemSettingData.
RASD_ORDER = [
    "Address", "AddressOnParent", "AllocationUnits", "AutomaticAllocation",
    "AutomaticDeallocation", "Caption", "Connection", "ConsumerVisibility", "Description",
    "ElementName", "HostResource", "InstanceID", "Limit", "MappingBehavior",
    "OtherResourceType", "Parent", "PoolID", "Reservation", "ResourceSubType", "ResourceType",
    "VirtualQuantity", "VirtualQuantityUnits", "Weight",
]
RASD_REPEATABLE = {"Connection", "HostResource"}
VSSD_ORDER = [
    "AutomaticRecoveryAction", "AutomaticShutdownAction", "AutomaticStartupAction",
    "AutomaticStartupActionDelay", "AutomaticStartupActionSequenceNumber", "Caption",
    "ConfigurationDataRoot", "ConfigurationFile", "ConfigurationID", "CreationTime",
    "Description", "ElementName", "InstanceID", "LogDataRoot", "Notes", "RecoveryFile",
    "SnapshotDataRoot", "SuspendDataRoot", "SwapFileDataRoot", "VirtualSystemIdentifier",
    "VirtualSystemType",
]
VSSD_REPEATABLE = {"Notes"}
SECTIONS = {
    "AnnotationSection", "ProductSection", "EulaSection", "VirtualHardwareSection",
    "ResourceAllocationSection", "InstallSection", "StartupSection", "DeploymentOptionSection",
    "OperatingSystemSection", "NetworkSection", "DiskSection",
}

problems = []


def problem(text):
    problems.append(text)


def local(element, namespace):
    return element.tag[len(namespace):] if element.tag.startswith(namespace) else None


def check_info_first(element, what):
    children = list(element)
    if not children or children[0].tag != OVF + "Info" or not (children[0].text or "").strip():
        problem(f"{what} does not start with a non-empty Info")


def check_cim_sequence(element, namespace, order, repeatable, what):
    last = -1
    seen = set()
    for child in element:
        name = local(child, namespace)
        if name is None:
            continue  # xs:any namespace="##other"
        if name not in order:
            problem(f"{what}: {name} is not an element of its class")
            continue
        index = order.index(name)
        if index < last or (index == last and name not in repeatable):
            problem(f"{what}: {name} is out of the schema's order")
        last = index
        seen.add(name)
    for required in ("ElementName", "InstanceID"):
        if required not in seen:
            problem(f"{what} has no {required}")


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    packed = {}
    for pair in argv[2:]:
        name, _, size = pair.partition("=")
        packed[name] = int(size)
    try:
        root = ET.parse(argv[1]).getroot()
    except ET.ParseError as error:
        print(f"not well-formed XML: {error}")
        return 1
    if root.tag != OVF + "Envelope":
        print(f"the root element is {root.tag}, not ovf:Envelope")
        return 1

    # Envelope: References, Section*, Content, Strings*.
    children = list(root)
    kinds = []
    for child in children:
        name = local(child, OVF)
        if name == "References":
            kinds.append("R")
        elif name in SECTIONS:
            kinds.append("S")
        elif name in ("VirtualSystem", "VirtualSystemCollection"):
            kinds.append("C")
        elif name == "Strings":
            kinds.append("T")
        else:
            kinds.append("?")
            problem(f"Envelope holds an unexpected element {child.tag}")
    sequence = "".join(kinds)
    stripped = sequence.lstrip("R")
    if not sequence.startswith("R") or sequence.count("R") != 1:
        problem("Envelope does not start with exactly one References")
    if sequence.count("C") != 1 or not stripped.rstrip("T").endswith("C") or \
            "C" in stripped.rstrip("T")[:-1] or set(stripped.rstrip("T")[:-1]) - {"S"}:
        problem(f"Envelope's children are not References, Sections, one Content, Strings ({sequence})")

    files = {}
    for file in root.iter(OVF + "File"):
        file_id, href = file.get(OVF + "id"), file.get(OVF + "href")
        if not file_id or not href:
            problem("a File lacks ovf:id or ovf:href")
            continue
        files[file_id] = href
        if href not in packed:
            problem(f"File {file_id} refers to {href}, which is not in the package")
        elif file.get(OVF + "size") is not None and int(file.get(OVF + "size")) != packed[href]:
            problem(f"File {href} declares ovf:size {file.get(OVF + 'size')} but is {packed[href]} bytes")
    for name in packed:
        if name not in files.values():
            problem(f"{name} is packed but no File refers to it")

    for section in root.iter():
        name = local(section, OVF)
        if name in SECTIONS:
            check_info_first(section, name)

    disks = set()
    for disk in root.iter(OVF + "Disk"):
        disk_id = disk.get(OVF + "diskId")
        if not disk_id:
            problem("a Disk has no ovf:diskId")
            continue
        disks.add(disk_id)
        if not (disk.get(OVF + "capacity") or "").isdigit():
            problem(f"Disk {disk_id} has no whole-number ovf:capacity")
        if disk.get(OVF + "fileRef") not in files:
            problem(f"Disk {disk_id}'s ovf:fileRef names no File")
    networks = {n.get(OVF + "name") for n in root.iter(OVF + "Network")}

    for system in root.iter(OVF + "VirtualSystem"):
        check_info_first(system, "VirtualSystem")
        if not system.get(OVF + "id"):
            problem("VirtualSystem has no ovf:id")
        names = [i for i, c in enumerate(system) if c.tag == OVF + "Name"]
        if names and names != [1]:
            problem("VirtualSystem's Name is not right after its Info")

    for hardware in root.iter(OVF + "VirtualHardwareSection"):
        tags = [local(c, OVF) for c in hardware]
        body = "".join({"Info": "I", "System": "S", "Item": "T"}.get(t, "?") for t in tags)
        if not body.startswith("I") or "?" in body or body[1:].lstrip("S").strip("T") or \
                body.count("S") > 1:
            problem(f"VirtualHardwareSection is not Info, System?, Item* ({tags})")
        for system in hardware.findall(OVF + "System"):
            check_cim_sequence(system, VSSD, VSSD_ORDER, VSSD_REPEATABLE, "System")
        items = hardware.findall(OVF + "Item")
        ids = [i.findtext(RASD + "InstanceID") for i in items]
        if len(set(ids)) != len(ids):
            problem(f"Item InstanceIDs are not unique ({ids})")
        for item in items:
            what = f"Item {item.findtext(RASD + 'InstanceID')}"
            check_cim_sequence(item, RASD, RASD_ORDER, RASD_REPEATABLE, what)
            parent = item.findtext(RASD + "Parent")
            if parent is not None and parent not in ids:
                problem(f"{what}'s Parent {parent} is no Item")
            for host in item.findall(RASD + "HostResource"):
                text = host.text or ""
                if text.startswith("ovf:/disk/") and text[len("ovf:/disk/"):] not in disks:
                    problem(f"{what}'s HostResource {text} names no Disk")
            for connection in item.findall(RASD + "Connection"):
                if connection.text not in networks:
                    problem(f"{what}'s Connection {connection.text} names no Network")

    for os_section in root.iter(OVF + "OperatingSystemSection"):
        if not (os_section.get(OVF + "id") or "").isdigit():
            problem("OperatingSystemSection has no whole-number ovf:id")

    if problems:
        print("\n".join(problems))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
